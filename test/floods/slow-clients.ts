/**
 * Slowloris-style clients: connections that hold a socket without finishing anything. Each
 * reports when, and how, the server ended it; none of them ever closes on its own.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface TlsIdentity {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface SlowEnd {
  /** Milliseconds from the connection's start until the server closed it. */
  readonly ms: number;
  /** The status line the server sent before closing, if any (e.g. `HTTP/1.1 408 Request Timeout`). */
  readonly answer: string | undefined;
  /** Whether the TLS handshake completed (false: cut or refused before it). */
  readonly secured: boolean;
}

export interface SlowConnection {
  readonly ended: Promise<SlowEnd>;
  /** Close from our side (clean-up after a test that failed). */
  stop(): void;
}

export type SlowKind =
  /** TCP only: never sends a TLS ClientHello. */
  | { readonly kind: 'no-handshake' }
  /** Finishes the handshake, then sends nothing. */
  | { readonly kind: 'idle' }
  /** Sends the request line and headers one byte every `everyMs`, never ending them. */
  | { readonly kind: 'headers'; readonly path: string; readonly everyMs: number }
  /** Sends complete headers announcing `length` bytes, then the body one byte every `everyMs`. */
  | {
      readonly kind: 'body';
      readonly path: string;
      readonly length: number;
      readonly contentType: string;
      readonly everyMs: number;
    };

/** Open one slow connection of `how` to 127.0.0.1:`port`. */
export function slowConnection(port: number, tls: TlsIdentity, how: SlowKind): SlowConnection {
  const start = Date.now();
  let secured = false;
  let answer: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const drip = (socket: Socket, text: string, everyMs: number) => {
    let i = 0;
    timer = setInterval(() => {
      if (socket.destroyed || !socket.writable) return clearInterval(timer);
      socket.write(text[i++ % text.length] as string);
    }, everyMs);
  };
  const socket: Socket =
    how.kind === 'no-handshake'
      ? tcpConnect(port, '127.0.0.1')
      : tlsConnect(
          {
            port,
            host: '127.0.0.1',
            servername: 'localhost',
            ca: tls.ca,
            ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
          },
          () => {
            secured = true;
            if (how.kind === 'headers')
              drip(
                socket,
                `POST ${how.path} HTTP/1.1\r\nHost: localhost\r\n${'X-Pad: a\r\n'.repeat(1000)}`,
                how.everyMs,
              );
            if (how.kind === 'body') {
              socket.write(
                `POST ${how.path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${how.contentType}\r\n` +
                  `Content-Length: ${how.length}\r\n\r\n`,
              );
              drip(socket, '{', how.everyMs);
            }
          },
        );
  socket.on('data', (d: Buffer) => (answer ??= d.toString('latin1').split('\r\n')[0]));
  socket.on('error', () => undefined);
  const ended = new Promise<SlowEnd>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve({ ms: Date.now() - start, answer, secured });
    }),
  );
  return { ended, stop: () => socket.destroy() };
}
