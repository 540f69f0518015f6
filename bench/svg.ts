// Hand-written SVG chart of the ping-pong latency distribution: one panel per condition,
// one line per system (cumulative distribution, log-scaled time axis). No dependencies;
// any browser shows it.
import { CONDITION_LABEL, type ConditionSummary } from './report.js';
import { SYSTEM_LABEL, type SystemId } from './systems.js';

const COLORS: Record<SystemId, string> = {
  tcp: '#333333', udx: '#8c564b', hyperdht: '#e377c2', holesail: '#9467bd', 'udx-proxy': '#17becf', floor: '#999999', direct: '#1f77b4', 'relay-udp': '#2ca02c', 'relay-ws': '#ff7f0e', webrtc: '#d62728',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function latencySvg(conds: ConditionSummary[], title: string): string {
  const W = 900, PH = 280, M = { l: 70, r: 250, t: 40, b: 45 };
  const panels = conds.filter((c) => c.systems.some((s) => s.pingQuantilesUs.length));
  const H = M.t + panels.length * (PH + M.b) + 10;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="13">${esc(title.length > 110 ? `${title.slice(0, 107)}…` : title)}</text>`,
  ];
  panels.forEach((c, pi) => {
    const top = M.t + pi * (PH + M.b);
    const x0 = M.l, x1 = W - M.r, y0 = top + PH - 20, y1 = top + 20;
    const all = c.systems.flatMap((s) => s.pingQuantilesUs).filter((v) => v > 0);
    const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
    const X = (v: number): number => x0 + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (x1 - x0);
    const Y = (q: number): number => y0 - (q / 100) * (y0 - y1);
    parts.push(`<text x="${x0}" y="${top + 10}" font-size="13" font-weight="bold">${esc(CONDITION_LABEL[c.condition])}: 64-byte ping-pong round time (cumulative)</text>`);
    parts.push(`<rect x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}" fill="none" stroke="#999"/>`);
    for (let d = lo; d <= hi; d *= 10) {
      for (const m of [1, 2, 5]) {
        const v = d * m;
        if (v > hi) break;
        const x = X(v).toFixed(1);
        parts.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y1}" stroke="#eee"/>`);
        parts.push(`<text x="${x}" y="${y0 + 15}" text-anchor="middle" fill="#555">${v >= 1000 ? `${v / 1000} ms` : `${v} µs`}</text>`);
      }
    }
    for (const q of [0, 50, 90, 99, 100]) {
      const y = Y(q).toFixed(1);
      parts.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#eee"/>`);
      parts.push(`<text x="${x0 - 6}" y="${Number(y) + 4}" text-anchor="end" fill="#555">${q} %</text>`);
    }
    c.systems.forEach((s, si) => {
      if (!s.pingQuantilesUs.length) return;
      const pts = s.pingQuantilesUs.map((v, i) => `${X(v).toFixed(1)},${Y(i / 2).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[s.system]}" stroke-width="1.8"/>`);
      const ly = y1 + 14 + si * 18;
      parts.push(`<line x1="${x1 + 12}" y1="${ly - 4}" x2="${x1 + 32}" y2="${ly - 4}" stroke="${COLORS[s.system]}" stroke-width="3"/>`);
      const p50 = s.pingP50Us >= 1000 ? `${(s.pingP50Us / 1000).toFixed(1)} ms` : `${s.pingP50Us.toFixed(0)} µs`;
      parts.push(`<text x="${x1 + 38}" y="${ly}">${esc(SYSTEM_LABEL[s.system])} (p50 ${p50})</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
