/** The banner above the chat: what went wrong or what the page is doing, with the buttons that help. */
import { $ } from './dom.ts';

export interface NoticeOptions {
  error?: boolean;
  /** Offer "Use the fallback endpoint". */
  offerFallback?: boolean;
  /** Offer "Reload the model" (after a GPU device loss). */
  offerRecover?: boolean;
}

/** Every notice shown, oldest first (window.__demo.notices). */
export const shown: string[] = [];

export function notice(text: string, o: NoticeOptions = {}): void {
  text = text.replaceAll('`', ''); // library messages quote code in backticks: plain text here
  if (text) shown.push(text);
  const el = $('notice');
  el.hidden = !text;
  $('notice-text').textContent = text;
  el.classList.toggle('error', o.error === true);
  $('use-fallback').hidden = !o.offerFallback;
  $('recover').hidden = !o.offerRecover;
}
