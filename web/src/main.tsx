import { render } from 'preact';
import { openClient } from './sync/index';
import { App } from './ui/app';
import './ui/styles.css';

async function start(): Promise<void> {
  const root = document.getElementById('app')!;
  try {
    const client = await openClient({ baseUrl: location.origin });
    root.textContent = '';
    render(<App client={client} />, root);
  } catch (e) {
    root.innerHTML = '';
    const p = document.createElement('p');
    p.className = 'form-err';
    p.setAttribute('data-testid', 'startup-error');
    p.textContent = `CivicSync could not start: ${e instanceof Error ? e.message : String(e)}`;
    root.append(p);
  }
}

if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js', { scope: '/', type: 'module' }).catch((e) => console.warn('service worker not registered', e));
}
void start();
