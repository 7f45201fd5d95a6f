// A bar chart on Chart.js (canvas): colours from the design tokens, light or dark, and the
// numbers beside it as a table for people who cannot see the chart.
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from 'chart.js'
import { useEffect, useId, useRef } from 'react'

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip)

const token = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim()

export function BarChart({ title, labels, values, unit, horizontal = false }: { title: string; labels: string[]; values: number[]; unit: string; horizontal?: boolean }) {
  const canvas = useRef<HTMLCanvasElement>(null)
  const tableId = useId()
  useEffect(() => {
    if (!canvas.current) return
    const grid = token('--border')
    const text = token('--text-muted')
    const chart = new Chart(canvas.current, {
      type: 'bar',
      data: { labels, datasets: [{ label: unit, data: values, backgroundColor: token('--accent'), borderRadius: 4, maxBarThickness: 36 }] },
      options: {
        indexAxis: horizontal ? 'y' : 'x',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false }, tooltip: { enabled: true } },
        scales: {
          x: { grid: { color: grid }, ticks: { color: text, maxRotation: 0, autoSkip: true, precision: 0 }, beginAtZero: true },
          y: { grid: { color: grid }, ticks: { color: text, precision: 0 }, beginAtZero: true },
        },
      },
    })
    return () => chart.destroy()
  }, [labels, values, unit, horizontal])
  const max = values.length ? Math.max(...values) : 0
  return (
    <figure className="chart">
      <figcaption className="card-title">{title}</figcaption>
      <div className="chart-canvas">
        <canvas ref={canvas} role="img" aria-label={`${title}: bar chart, highest ${max} ${unit}; the numbers are in the table below`} aria-describedby={tableId} />
      </div>
      <details>
        <summary className="small">Show the numbers</summary>
        <table className="table table-compact" id={tableId}>
          <thead>
            <tr>
              <th scope="col">{horizontal ? 'Reason' : 'Time'}</th>
              <th scope="col">{unit}</th>
            </tr>
          </thead>
          <tbody>
            {labels.map((label, i) => (
              <tr key={label}>
                <td>{label}</td>
                <td data-value={values[i]}>{values[i]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  )
}
