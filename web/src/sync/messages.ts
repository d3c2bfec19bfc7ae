/**
 * Plain words for the person at the screen about what happened to one of their changes: a
 * rejection (the change was rolled back), a change waiting for a supervisor, a supervisor's
 * decision. Written for a clinic worker, not a developer: no codes, no ids.
 */
import type { Data, Op } from './records';

export interface ErrorInfo {
  readonly code: string;
  readonly message?: string;
  readonly field?: string;
}

/** "10:00" from "2026-12-07T10:00:00+05:30": the wall-clock time written in the string, not converted. */
export function wallClockTime(dateTime: unknown): string | undefined {
  if (typeof dateTime !== 'string') return undefined;
  const m = /^\d{4}-\d{2}-\d{2}[Tt ](\d{2}):(\d{2})/.exec(dateTime);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/** "7 Dec" style date from the string itself (no time-zone conversion). */
function wallClockDate(dateTime: unknown): string | undefined {
  if (typeof dateTime !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(dateTime);
  if (!m) return undefined;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${Number(m[3])} ${months[Number(m[2]) - 1] ?? m[2]}`;
}

function str(x: unknown): string | undefined {
  return typeof x === 'string' && x.trim() !== '' ? x.trim() : undefined;
}

/** How to name the record in a sentence, e.g. "the booking for Nimali Perera at 10:00". */
export function describeRecord(collection: string, data: Data | null | undefined): string {
  const d = data ?? {};
  switch (collection) {
    case 'appointments': {
      const who = str(d['patientName']);
      const time = wallClockTime(d['slotStart']);
      const day = wallClockDate(d['slotStart']);
      let s = 'the booking';
      if (who) s += ` for ${who}`;
      if (time) s += ` at ${time}` + (day ? ` on ${day}` : '');
      return s;
    }
    case 'clinics': {
      const name = str(d['name']) ?? str(d['clinicId']);
      return name ? `the clinic ${name}` : 'the clinic';
    }
    case 'subsidy_claims': {
      const crop = str(d['crop']);
      const farmer = str(d['farmerId']);
      return `the ${crop ? crop + ' ' : ''}subsidy claim${farmer ? ` of farmer ${farmer}` : ''}`;
    }
    default:
      return `the ${collection.replace(/_/g, ' ')} record`;
  }
}

function fieldName(field: string | undefined): string | undefined {
  if (!field) return undefined;
  const last = field.replace(/^\/data/, '').split('/').filter(Boolean)[0];
  if (!last) return undefined;
  return last
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/_/g, ' ')
    .toLowerCase();
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * The message for a change the server refused and that was rolled back on this device.
 *
 * @param data the data of the change as the user made it (for a create: the refused record)
 */
export function rejectionMessage(collection: string, op: Op, data: Data | null | undefined, error: ErrorInfo): string {
  const what = describeRecord(collection, data);
  const yourChange = op === 'create' ? `Your new ${what.replace(/^the /, '')}` : op === 'delete' ? `Deleting ${what}` : `Your change to ${what}`;
  const notKept = op === 'delete' ? `${yourChange} was not done` : `${yourChange} could not be kept`;
  const serverWords = str(error.message);
  switch (error.code) {
    case 'CAPACITY_EXCEEDED': {
      const time = wallClockTime(data?.['slotStart']);
      if (collection === 'appointments' && time) {
        if (op === 'create') return `Your booking for ${time} could not be kept: that slot is full. Please choose another time.`;
        return `Your change to the booking for ${time} could not be kept: that slot is full. Please choose another time.`;
      }
      return `${notKept}: there is no more room. ${serverWords ?? 'Please choose another time.'}`;
    }
    case 'UNIQUE_VIOLATION':
      return `${notKept}: it duplicates one that already exists.` + (serverWords ? ` ${serverWords}` : '');
    case 'RULE_VIOLATION':
      return `${notKept}: it breaks a rule of the service.` + (serverWords ? ` ${serverWords}` : '');
    case 'VALIDATION_FAILED': {
      const f = fieldName(error.field);
      return `${notKept}: ${f ? `the ${f} is missing or not filled in correctly` : 'some details are missing or not filled in correctly'}. Please check it and enter it again.`;
    }
    case 'INVALID_TRANSITION': {
      const f = fieldName(error.field) ?? 'status';
      return `${notKept}: the ${f} cannot go back or change that way. The record shows its current ${f}.`;
    }
    case 'OUT_OF_SCOPE':
      return `${notKept}: it belongs to a clinic or office that is not one of yours.`;
    case 'FORBIDDEN':
      return op === 'delete'
        ? `${notKept}: you are not allowed to delete these records. Please ask a supervisor.`
        : `${notKept}: you are not allowed to make this change. Please ask a supervisor.`;
    case 'RECORD_DELETED':
      return `${notKept}: someone else deleted this record.`;
    case 'RECORD_NOT_FOUND':
      return `${notKept}: the record no longer exists on the server.`;
    case 'CLOCK_SKEW':
      return `${notKept}: this device's date or time is wrong. Please correct the clock, then make the change again.`;
    case 'RESOLUTION_REJECTED':
      return `${notKept}.` + (serverWords ? ` ${serverWords}` : '');
    default:
      return `${notKept} because of a problem in the app (${error.code}). Please tell your supervisor.`;
  }
}

export function conflictMessage(collection: string, data: Data | null | undefined): string {
  return `Your change to ${describeRecord(collection, data)} is waiting for a supervisor's review.`;
}

export type Resolution = 'keepServer' | 'takeClient' | 'edit';

/**
 * The message for a supervisor's decision about a parked or refused change.
 *
 * @param dismissed true when the supervisor dismissed a refused change and no record exists
 */
export function resolutionMessage(collection: string, data: Data | null | undefined, resolution: string, dismissed = false): string {
  const what = describeRecord(collection, data);
  const other = collection === 'appointments' || collection === 'clinics' ? "the clinic's version" : 'the version already saved';
  if (dismissed) return `A supervisor reviewed your change to ${what}: it stays refused.`;
  switch (resolution) {
    case 'takeClient':
      return `A supervisor reviewed your change to ${what}: kept yours.`;
    case 'edit':
      return `A supervisor reviewed your change to ${what}: edited. Please check the record.`;
    default:
      return `A supervisor reviewed your change to ${what}: kept ${other}.`;
  }
}

/** Plain words for a failed sync attempt, for the global indicator. */
export function syncErrorMessage(code: string, message?: string): string {
  switch (code) {
    case 'OFFLINE':
      return 'No connection to the server. Your changes are kept on this device and will be sent later.';
    case 'DEVICE_REVOKED':
      return 'This device has been switched off by the administrator. Please ask for a new enrollment code.';
    case 'UNAUTHENTICATED':
    case 'TOKEN_EXPIRED':
    case 'CHALLENGE_INVALID':
      return 'This device could not sign in to the server. It will try again.';
    case 'RATE_LIMITED':
      return 'The server is busy. Syncing will try again shortly.';
    case 'NOT_ENROLLED':
      return 'This device is not set up yet. Please enroll it with a code.';
    case 'INTERNAL':
    case 'UNAVAILABLE':
      return 'The server has a problem. Your changes are kept and will be sent later.';
    default:
      return capitalize(`syncing failed (${code}${message ? ': ' + message : ''}). Your changes are kept and will be sent later.`);
  }
}
