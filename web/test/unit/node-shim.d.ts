// The few Node built-ins the unit tests use, declared here so that the project needs no
// @types/node (the app's code must not use Node APIs; these are for tests only).
declare module 'node:fs' {
  export function readFileSync(path: string, encoding: 'utf8'): string;
  export function readdirSync(path: string): string[];
}
declare module 'node:zlib' {
  export function gunzipSync(data: Uint8Array): Uint8Array;
}
declare const process: { env: Record<string, string | undefined> };
