/**
 * CivicSync's web sync library: openClient() and the public types (see api.ts). The UI and the
 * service worker use only what is exported here.
 */
import type { CivicSyncWeb, ClientOptions } from './api';
import { WebClient } from './client';

export * from './api';
export { describeRecord, wallClockTime } from './messages';

/** Opens (or creates) the device's IndexedDB database and returns the client. */
export async function openClient(options: ClientOptions): Promise<CivicSyncWeb> {
  return WebClient.open(options);
}
