/**
 * The logger every module outside the HTTP surface and the role plugins takes: pino's shape,
 * without depending on fastify (whose request logger satisfies it, as does any pino logger).
 */
export interface LogFn {
  (object: object, message?: string): void;
  (message: string): void;
}

export interface Logger {
  readonly fatal: LogFn;
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
  readonly trace: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}
