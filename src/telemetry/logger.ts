import { pino, type Logger } from 'pino';

/** Structured JSON logs. Never pass personal values: log ids, codes and counts only. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'custos' }, redact: ['req.headers.authorization'] });
}

export type { Logger };
