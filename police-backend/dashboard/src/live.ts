/**
 * The live-update WebSocket (`/api/live`, same origin, session cookie). Reconnects by itself with
 * exponential backoff and jitter, and reports its state so every page can say when it is down.
 */
import type { LiveMessage } from './types.js';
import { QUEUES } from './types.js';

export type LiveState = 'connecting' | 'connected' | 'disconnected';

export interface LiveStatus {
  readonly state: LiveState;
  /** True once the connection has been up at least once; "back" vs "first time". */
  readonly wasConnected: boolean;
  /** When disconnected: milliseconds until the next attempt. */
  readonly retryInMs?: number;
}

export interface LiveOptions {
  readonly onMessage: (message: LiveMessage) => void;
  readonly onStatus: (status: LiveStatus) => void;
  /** Called after a drop once the connection is back: data may have been missed. */
  readonly onReconnected: () => void;
  /**
   * Called before each retry; resolve false to stop retrying (the session is over). A browser
   * cannot see the 401 of a refused upgrade, so the caller checks the session over HTTP.
   */
  readonly beforeRetry: () => Promise<boolean>;
}

const BASE_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;

export function liveUrl(): string {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/live';
}

export function parseLiveMessage(text: unknown): LiveMessage | null {
  if (typeof text !== 'string') return null;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (!data || typeof data !== 'object') return null;
  const m = data as Record<string, unknown>;
  if (m['type'] === 'hello' && typeof m['username'] === 'string') return m as LiveMessage;
  if (m['type'] === 'alert' && isObject(m['alert'], 'id')) return m as LiveMessage;
  if (m['type'] === 'beacon' && isObject(m['beacon'], 'beaconId')) return m as LiveMessage;
  if (m['type'] === 'counts' && typeof m['countsAt'] === 'number' && isCounts(m['counts']))
    return m as LiveMessage;
  if (m['type'] === 'absence' && isObject(m['absence'], 'id')) return m as LiveMessage;
  return null;
}

function isCounts(value: unknown): boolean {
  return (
    !!value &&
    typeof value === 'object' &&
    QUEUES.every((q) => typeof (value as Record<string, unknown>)[q] === 'number')
  );
}

function isObject(value: unknown, key: string): boolean {
  return (
    !!value &&
    typeof value === 'object' &&
    typeof (value as Record<string, unknown>)[key] === 'string'
  );
}

export class LiveConnection {
  private socket: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private everConnected = false;
  private running = false;

  constructor(private readonly options: LiveOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop(): void {
    this.running = false;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    this.clearTimer();
    this.dropSocket();
    this.attempt = 0;
    this.everConnected = false;
  }

  private connect(): void {
    this.clearTimer();
    this.dropSocket();
    this.options.onStatus({ state: 'connecting', wasConnected: this.everConnected });
    let socket: WebSocket;
    try {
      socket = new WebSocket(liveUrl());
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      const reconnected = this.everConnected;
      this.attempt = 0;
      this.everConnected = true;
      this.options.onStatus({ state: 'connected', wasConnected: reconnected });
      if (reconnected) this.options.onReconnected();
    };
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket !== socket) return;
      const message = parseLiveMessage(event.data);
      if (message) this.options.onMessage(message);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleRetry();
    };
    // An error is always followed by close; nothing to do here.
    socket.onerror = () => undefined;
  }

  private scheduleRetry(): void {
    if (!this.running) return;
    const exp = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(exp * (0.8 + Math.random() * 0.4));
    this.attempt++;
    this.options.onStatus({
      state: 'disconnected',
      wasConnected: this.everConnected,
      retryInMs: delay,
    });
    this.timer = setTimeout(() => void this.retry(), delay);
  }

  private async retry(): Promise<void> {
    this.timer = null;
    const keepGoing = await this.options.beforeRetry().catch(() => true);
    if (this.running && keepGoing && !this.socket) this.connect();
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) {
      socket.close(1000);
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly onOffline = (): void => {
    if (!this.socket) return;
    this.dropSocket();
    this.scheduleRetry();
  };

  /** Back online or back in view while down: try now instead of waiting out the backoff. */
  private readonly onOnline = (): void => {
    if (!this.running || this.socket) return;
    this.attempt = 0;
    this.clearTimer();
    void this.retry();
  };

  private readonly onVisible = (): void => {
    if (document.visibilityState === 'visible') this.onOnline();
  };
}
