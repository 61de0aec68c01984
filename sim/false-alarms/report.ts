import type { SimResult } from './run.js';

const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)} %` : 'n/a');
const num = (n: number) => n.toLocaleString('en-GB');

/** The figures as a short Markdown report (what docs/BENCHMARKS.md quotes). */
export function formatReport(r: SimResult): string {
  const d = r.departures;
  const lines = [
    `False-alarm simulation: ${num(r.people)} people × ${r.days} days = ${num(r.personDays)} person-days (seed ${r.seed});`,
    `window ${r.rules.windowSeconds / 60} min, grace ${r.rules.graceSeconds / 60} min, silent-relay grace ${r.rules.silentGraceSeconds / 3600} h.`,
    '',
    '| measure | result |',
    '|---|---|',
    `| departures longer than window + grace, phone with the person and online | ${num(d.detectedWithPhoneOnline)} of ${num(d.mustDetectWithPhoneOnline)} reached police (${pct(d.detectedWithPhoneOnline, d.mustDetectWithPhoneOnline)}) |`,
    `| … of which the phone had no network or went flat during the departure | ${num(d.detected - d.detectedWithPhoneOnline)} of ${num(d.phoneSilent)} reached police as violations (the others as RELAY_SILENT notes) |`,
    `| time from leaving to police: median / p95 / max | ${d.minutesToPolice.median.toFixed(0)} / ${d.minutesToPolice.p95.toFixed(0)} / ${d.minutesToPolice.max.toFixed(0)} min |`,
    `| shorter departures (home within window + grace) reported anyway | ${num(d.shorterReported)} of ${num(d.shorter)} |`,
    `| late returns from an authorised absence (beyond the grace, phone online) reported | ${num(d.lateReturnsDetected)} of ${num(d.lateReturns)} (${pct(d.lateReturnsDetected, d.lateReturns)}); ${num(d.lateReturnsPhoneSilent)} more with a silent phone |`,
    `| departures leaving the phone at home (invisible to any relay design) | ${num(d.phoneLeftHome)} |`,
    `| violation alerts to police: true / false | ${num(r.violationAlerts.true)} / ${num(r.violationAlerts.false)} |`,
    `| **false violation alerts per person-day** | **${r.falseViolationsPerPersonDay.toFixed(5)}** (goal < 0.001) |`,
    `| beacon-maintenance items per person-day | ${r.maintenancePerPersonDay.toFixed(4)} |`,
    `| RELAY_SILENT notes (phone silent, then home without proof) per person-day | ${(r.relaySilentNotes / r.personDays).toFixed(4)} |`,
    `| warnings shown to the person per person-day | ${r.warningsPerPersonDay.toFixed(3)} |`,
    '',
    `False violation alerts by what was happening: ${
      Object.entries(r.falseByCause)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }.`,
    `Maintenance items: ${
      Object.entries(r.maintenance)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }.`,
    `Faults simulated: ${Object.entries(r.faults)
      .map(([k, v]) => `${k} ${num(v)}`)
      .join(', ')}.`,
  ];
  return lines.join('\n');
}
