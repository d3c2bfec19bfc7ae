/// <reference path="./node-shim.d.ts" />
/** Paths and readers for the repository's contract files, read where they are (never copied). */
import { readFileSync, readdirSync } from 'node:fs';

const ROOT = new URL('../../../', import.meta.url).pathname;
export const CONTRACTS = ROOT + 'contracts/src/main/resources/org/civicsync/contracts/';
export const COLLECTIONS = ROOT + 'core/src/main/resources/org/civicsync/core/collections/';

export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export function listJson(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}
