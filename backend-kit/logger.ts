import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs with nothing identifying in them. Code never logs requests, bodies, keys or
 * addresses; the redaction paths are a second line of defence for fields that might slip in.
 */
export function createLogger(options: {
  name: string;
  level?: string;
  destination?: DestinationStream;
}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      base: { service: options.name },
      redact: {
        paths: [
          'req',
          'res',
          'headers',
          'authorization',
          'ip',
          'remoteAddress',
          'skTPast',
          'skBeacon',
          'token',
          'tokens',
          'jwt',
          '*.authorization',
          '*.ip',
        ],
        remove: true,
      },
    },
    options.destination ?? pino.destination(1),
  );
}
