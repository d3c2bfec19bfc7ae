/** Enrollment: a code typed or scanned from a QR code (BarcodeDetector + camera, where the browser has them), and a device name. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { messageOf, useApp } from './util';

interface Detector { detect(source: HTMLVideoElement): Promise<{ rawValue: string }[]> }
type DetectorCtor = new (options: { formats: string[] }) => Detector;

function detectorCtor(): DetectorCtor | undefined {
  const ctor = (globalThis as { BarcodeDetector?: DetectorCtor }).BarcodeDetector;
  return ctor && typeof navigator.mediaDevices?.getUserMedia === 'function' ? ctor : undefined;
}

export function EnrollScreen({ onEnrolled }: { onEnrolled: () => void }) {
  const { client } = useApp();
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [scanning, setScanning] = useState(false);
  const canScan = detectorCtor() !== undefined;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!code.trim()) return setError('Enter the enrollment code from your administrator.');
    if (!name.trim()) return setError('Give this device a name your administrator will recognise.');
    setBusy(true);
    setError('');
    try {
      await client.enroll(code.trim(), name.trim());
      onEnrolled();
    } catch (err) {
      const c = (err as { code?: string }).code;
      setError(
        c === 'ENROLLMENT_CODE_INVALID'
          ? 'That code was not accepted. Check the typing, or ask your administrator for a new code.'
          : !navigator.onLine
            ? 'You need a connection to enroll this device. Try again when you are online.'
            : messageOf(err),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main>
      <section data-testid="enroll-screen">
        <h2>Set up this device</h2>
        <p>Enter the enrollment code your administrator gave you{canScan ? ', or scan its QR code' : ''}. You need a connection for this step only.</p>
        <form class="panel" onSubmit={submit} noValidate data-testid="enroll-form">
          <label for="en-code">Enrollment code</label>
          <input id="en-code" data-testid="enroll-code" autocomplete="off" autocapitalize="characters" spellcheck={false} placeholder="XXXX-XXXX-XXXX" value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          {canScan ? (
            <div class="actions">
              <button type="button" class="alt" data-testid="enroll-scan" onClick={() => setScanning(true)}>Scan QR code</button>
            </div>
          ) : null}
          {scanning ? <Scanner onCode={(c) => { setCode(c.trim()); setScanning(false); }} onClose={() => setScanning(false)} /> : null}
          <label for="en-name">Device name</label>
          <input id="en-name" data-testid="enroll-device-name" autocomplete="off" placeholder="e.g. Badulla outreach tablet 2" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          {error ? <p class="form-err" role="alert" data-testid="enroll-error">{error}</p> : null}
          <div class="actions">
            <button type="submit" disabled={busy} data-testid="enroll-submit">{busy ? 'Enrolling…' : 'Enroll this device'}</button>
          </div>
        </form>
      </section>
    </main>
  );
}

function Scanner({ onCode, onClose }: { onCode: (code: string) => void; onClose: () => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    const Ctor = detectorCtor();
    if (!Ctor) return;
    let stream: MediaStream | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const detector = new Ctor({ formats: ['qr_code'] });
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: 'environment' }, audio: false })
      .then(async (s) => {
        stream = s;
        if (stopped) return s.getTracks().forEach((t) => t.stop());
        const v = video.current!;
        v.srcObject = s;
        await v.play();
        const tick = async () => {
          if (stopped) return;
          try {
            const found = await detector.detect(v);
            if (found.length && found[0].rawValue) return onCode(found[0].rawValue);
          } catch { /* frame not ready */ }
          timer = setTimeout(tick, 250);
        };
        void tick();
      })
      .catch((e) => setError(`The camera is not available (${messageOf(e)}). Type the code instead.`));
    return () => {
      stopped = true;
      clearTimeout(timer);
      stream?.getTracks().forEach((t) => t.stop());
    };
  }, []);
  return (
    <div class="panel" data-testid="scan-panel">
      <video ref={video} muted playsInline data-testid="scan-video" aria-label="Camera view: hold the QR code in front of the camera" />
      {error ? <p class="form-err" role="alert">{error}</p> : null}
      <div class="actions"><button type="button" class="alt" data-testid="scan-cancel" onClick={onClose}>Stop scanning</button></div>
    </div>
  );
}
