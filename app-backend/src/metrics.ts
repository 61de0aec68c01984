import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics: counts and gauges only, never a beacon ID, key or address as a label. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'presence_requests_total',
      help: 'Presence requests by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'presence_tokens_total',
      help: 'Tokens by result or rejection reason',
      labelNames: ['result'],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'presence_queue_depth',
      help: 'Presence requests waiting for validation',
      registers: [registry],
    }),
    alerts: new Counter({
      name: 'alerts_raised_total',
      help: 'Alerts raised by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    gaps: new Counter({
      name: 'presence_gaps_total',
      help: 'Gap lifecycle steps: provisional, cleared, confirmed, maintenance, resolved',
      labelNames: ['step'],
      registers: [registry],
    }),
    outboxPending: new Gauge({
      name: 'alerts_pending_delivery',
      help: 'Alert messages not yet delivered to the police backend',
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'alert_deliveries_total',
      help: 'Delivery attempts by result',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
