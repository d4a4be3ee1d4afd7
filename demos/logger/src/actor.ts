/**
 * logger: writes one structured log line per request through the logging capability, at the
 * level the query asks for (`?level=warn`, default info), and a console line. Answers what it
 * logged, or 503 when the logging capability refused (no link, for one).
 */
import { handler, json, log, type LogLevel } from '../../../actors-sdk/guest/index.ts';

const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

export default handler((req) => {
  const asked = req.query('level') ?? 'info';
  if (!LEVELS.includes(asked as LogLevel)) return json({ error: `level must be one of ${LEVELS.join(', ')}` }, { status: 400 });
  const level = asked as LogLevel;
  const context = { method: req.method, path: req.path, agent: req.headers.get('user-agent') ?? '-', bytes: req.body.byteLength };
  const written = log.write(level, req.query('msg') ?? 'request', context);
  console.log(`${req.method} ${req.path}`);
  if (!written.ok) return json({ logged: false, error: written.error }, { status: 503 });
  return json({ logged: true, level, context });
});
