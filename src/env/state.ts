/** The record of local embedded clusters, kept in STATE_DIR/clusters.json (mode 0600). */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface ClusterState {
  /** Connection URL for the application role (holds the password; file is 0600). */
  url: string;
  port: number;
  /** Data directory. */
  dataDir: string;
}

export function clusterStateFile(stateDir: string): string {
  return path.join(stateDir, 'clusters.json');
}

export function readClusterState(stateDir: string): Record<string, ClusterState> {
  const file = clusterStateFile(stateDir);
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, ClusterState>;
  } catch {
    return {};
  }
}

export async function writeClusterState(stateDir: string, state: Record<string, ClusterState>): Promise<void> {
  await writeFile(clusterStateFile(stateDir), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
}
