export const WORKER_V8_FLAGS: string[];
export function workerNodeOptions(nodeOptions?: string): string;
