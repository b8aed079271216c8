/** `cutover report`: a run's history made into a report model, rendered as HTML, Markdown and an SVG timeline. */
export type { ClosedStatus, RunEvent, RunHistory } from './history';
export { reportModel, type ReportModel } from './model';
export { reportHtml } from './html';
export { reportMarkdown } from './markdown';
export { timelineSvg } from './svg';
