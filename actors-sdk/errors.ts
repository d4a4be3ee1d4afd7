/**
 * Errors of the actors SDK tooling (`wasmlet actor new|build`). Every error has a stable
 * `code` and keeps the underlying `cause`.
 */

export type ActorBuildErrorCode =
  | 'PROJECT_INVALID' // actor.json missing, unreadable or invalid
  | 'TYPECHECK_FAILED' // the TypeScript compiler reported errors
  | 'BUNDLE_FAILED' // esbuild could not bundle the actor's module
  | 'NO_HANDLER' // the actor's module has no default export
  | 'COMPONENTIZE_FAILED' // componentize-js could not make a component
  | 'KEYS_INVALID' // a key file exists but holds no usable seed
  | 'SCAFFOLD_EXISTS'; // `actor new` would overwrite a non-empty folder

export class ActorBuildError extends Error {
  readonly code: ActorBuildErrorCode;
  constructor(code: ActorBuildErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ActorBuildError';
    this.code = code;
  }
}

export function isActorBuildError(err: unknown): err is ActorBuildError {
  return err instanceof ActorBuildError;
}
