/** The actors SDK part: WIT world, guest wrappers (in `guest/`, imported by actors as `@wasmlet/actor`), and the build/sign tooling. */
export { buildActor, bundleActor, componentizeBundle, typecheckProject, SDK_GUEST_DIR, SDK_GUEST_ENTRY, SDK_IMPORT, WIT_DIR, WORLD_NAME, type BuildActorOptions, type BuildProgress, type BuildStep, type BuiltActor } from './build.ts';
export { loadProject, parseProjectConfig, isActorName, PROJECT_FILE, type ActorProject, type ActorProjectConfig, type ActorProjectConfigInput } from './project.ts';
export { actorKeys, defaultKeysDir, moduleKeyFile, ACCOUNT_KEY_FILE, type ActorKeys } from './keys.ts';
export { ActorBuildError, isActorBuildError, type ActorBuildErrorCode } from './errors.ts';
export { scaffoldActor, type ScaffoldOptions, type ScaffoldResult } from './scaffold.ts';
export { registerActorCommands, progressLine, type ActorCliIo, type ActorCliDefaults } from './cli.ts';
export { startTestActor, type TestActor, type TestActorOptions, type TestResponse } from './testing.ts';
