// A dependency-free SVG line chart on log-log axes: rollout time against node count.

export interface Series {
  label: string;
  points: { x: number; y: number }[];
}

const W = 640;
const H = 400;
const PAD = { left: 70, right: 160, top: 30, bottom: 50 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

function decades(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

export function renderLogLogSvg(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const all = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  const xs = decades(Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x)));
  const ys = decades(Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y)));
  const [x0, x1] = [Math.log10(xs[0]!), Math.log10(xs.at(-1)!)];
  const [y0, y1] = [Math.log10(ys[0]!), Math.log10(ys.at(-1)!)];
  const px = (x: number) => PAD.left + ((Math.log10(x) - x0) / (x1 - x0 || 1)) * (W - PAD.left - PAD.right);
  const py = (y: number) =>
    H - PAD.bottom - ((Math.log10(y) - y0) / (y1 - y0 || 1)) * (H - PAD.top - PAD.bottom);
  const grid = [
    ...xs.map(
      (x) =>
        `<line x1="${px(x)}" y1="${PAD.top}" x2="${px(x)}" y2="${H - PAD.bottom}" stroke="#ddd"/>` +
        `<text x="${px(x)}" y="${H - PAD.bottom + 18}" text-anchor="middle">${x}</text>`,
    ),
    ...ys.map(
      (y) =>
        `<line x1="${PAD.left}" y1="${py(y)}" x2="${W - PAD.right}" y2="${py(y)}" stroke="#ddd"/>` +
        `<text x="${PAD.left - 8}" y="${py(y) + 4}" text-anchor="end">${y}</text>`,
    ),
  ];
  const lines = series.map((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter((p) => p.x > 0 && p.y > 0);
    const path = pts.map((p, j) => `${j ? 'L' : 'M'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    const dots = pts.map((p) => `<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3" fill="${color}"/>`).join('');
    const legendY = PAD.top + 20 * i;
    return (
      `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>${dots}` +
      `<rect x="${W - PAD.right + 15}" y="${legendY - 8}" width="12" height="12" fill="${color}"/>` +
      `<text x="${W - PAD.right + 32}" y="${legendY + 2}">${s.label}</text>`
    );
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<title>${title}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - 40}" y="18" text-anchor="middle" font-size="14">${title}</text>`,
    ...grid,
    ...lines,
    `<text x="${(W - PAD.right + PAD.left) / 2}" y="${H - 12}" text-anchor="middle">${xLabel}</text>`,
    `<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
