import { describe, expect, it } from 'vitest';
import { conflictMessage, describeRecord, rejectionMessage, resolutionMessage, syncErrorMessage, wallClockTime } from '../../src/sync/messages';

const booking = { patientName: 'Nimali Perera', clinicId: 'clinic-badulla-03', slotStart: '2026-12-07T10:00:00+05:30', status: 'booked' };

describe('plain-language notices', () => {
  it('a full slot on a new booking names the wall-clock time written in slotStart', () => {
    expect(rejectionMessage('appointments', 'create', booking, { code: 'CAPACITY_EXCEEDED', message: 'The … slot is full' })).toBe(
      'Your booking for 10:00 could not be kept: that slot is full. Please choose another time.',
    );
    // never converted to the browser's time zone
    expect(wallClockTime('2026-12-07T23:45:00-11:00')).toBe('23:45');
    expect(wallClockTime('2026-12-07T04:30:00Z')).toBe('04:30');
    expect(wallClockTime('not a time')).toBeUndefined();
  });

  it('says why a change was refused without codes or ids', () => {
    const cases: [string, 'create' | 'update' | 'delete', RegExp][] = [
      ['VALIDATION_FAILED', 'update', /the patient name is missing or not filled in correctly/],
      ['UNIQUE_VIOLATION', 'create', /duplicates one that already exists\. Clinic X is already registered\.$/],
      ['INVALID_TRANSITION', 'update', /the status cannot go back/],
      ['OUT_OF_SCOPE', 'update', /not one of yours/],
      ['FORBIDDEN', 'delete', /^Deleting the booking for Nimali Perera at 10:00 on 7 Dec was not done: you are not allowed to delete/],
      ['RECORD_DELETED', 'update', /someone else deleted this record/],
      ['CLOCK_SKEW', 'create', /date or time is wrong/],
      ['CAPACITY_EXCEEDED', 'update', /^Your change to the booking for 10:00 could not be kept: that slot is full/],
      ['MUTATION_ID_REUSED', 'update', /a problem in the app \(MUTATION_ID_REUSED\)/],
    ];
    for (const [code, op, expected] of cases) {
      const field = code === 'VALIDATION_FAILED' ? '/data/patientName' : code === 'INVALID_TRANSITION' ? '/data/status' : undefined;
      const message = code === 'UNIQUE_VIOLATION' ? 'Clinic X is already registered.' : 'x';
      expect(rejectionMessage('appointments', op, booking, { code, message, field }), code).toMatch(expected);
    }
  });

  it('names records of each collection', () => {
    expect(describeRecord('appointments', booking)).toBe('the booking for Nimali Perera at 10:00 on 7 Dec');
    expect(describeRecord('clinics', { clinicId: 'c1', name: 'Badulla outpatient clinic' })).toBe('the clinic Badulla outpatient clinic');
    expect(describeRecord('subsidy_claims', { farmerId: 'F-9', crop: 'paddy' })).toBe('the paddy subsidy claim of farmer F-9');
    expect(describeRecord('water_points', {})).toBe('the water points record');
  });

  it('tells of a change waiting for review and of the supervisor\'s decision', () => {
    expect(conflictMessage('appointments', booking)).toBe("Your change to the booking for Nimali Perera at 10:00 on 7 Dec is waiting for a supervisor's review.");
    expect(resolutionMessage('appointments', booking, 'takeClient')).toMatch(/: kept yours\.$/);
    expect(resolutionMessage('appointments', booking, 'keepServer')).toMatch(/: kept the clinic's version\.$/);
    expect(resolutionMessage('appointments', booking, 'edit')).toMatch(/: edited\. Please check the record\.$/);
    expect(resolutionMessage('subsidy_claims', {}, 'keepServer', true)).toMatch(/it stays refused\.$/);
  });

  it('explains a failed sync', () => {
    expect(syncErrorMessage('OFFLINE')).toMatch(/No connection/);
    expect(syncErrorMessage('DEVICE_REVOKED')).toMatch(/new enrollment code/);
  });
});
