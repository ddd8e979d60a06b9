/**
 * The transcript: "You" and "Assistant" messages, the answer rendered as Markdown as it streams,
 * the reasoning live in a "Thinking…" disclosure (none when the model did not reason), and the
 * raw text with a token count when the output is not harmony (a random or foreign model), so
 * that something is always visible. The view follows the answer down unless the reader has
 * scrolled up.
 */
import { h } from './dom.ts';
import { renderMarkdown } from './markdown.ts';

/**
 * Tokens without any harmony content before the raw text is shown: a harmony header
 * (`<|channel|>analysis<|message|>`, with a recipient and a content type at most) is far shorter.
 */
export const RAW_AFTER_TOKENS = 16;

/** How close to the bottom (px) still counts as "at the bottom". */
const BOTTOM_SLACK = 48;

export interface AnswerView {
  reasoning(delta: string): void;
  content(delta: string): void;
  /** Every generated token's text, harmony or not. */
  token(text: string): void;
  /** Ends the answer: stopped by the reader, or failed with `error`. */
  finish(end?: { stopped?: boolean; error?: string }): void;
  readonly text: string;
  readonly tokens: number;
  /** Whether the raw text is shown (the output is not harmony). */
  readonly raw: boolean;
}

export class ChatView {
  /** Whether new text scrolls the transcript to the bottom. */
  private following = true;

  constructor(private readonly log: HTMLElement, private readonly scroller: HTMLElement) {
    scroller.addEventListener('scroll', () => {
      this.following = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= BOTTOM_SLACK;
    }, { passive: true });
  }

  get isEmpty(): boolean {
    return this.log.childElementCount === 0;
  }

  clear(): void {
    this.log.replaceChildren();
  }

  addUser(text: string): void {
    const body = h('div', 'body');
    body.textContent = text;
    this.log.append(h('div', 'msg user', h('div', 'role', 'You'), body));
    this.following = true;
    this.follow();
  }

  addAssistant(): AnswerView {
    const box = h('div', 'msg assistant');
    box.setAttribute('aria-busy', 'true');
    const answer = h('div', 'answer');
    const raw = h('pre', 'raw');
    raw.hidden = true;
    const count = h('span', 'token-count');
    box.append(h('div', 'role', 'Assistant'), answer, raw, h('div', 'meta', count));
    this.log.append(box);
    this.follow();

    let text = '';
    let rawText = '';
    let tokens = 0;
    let thinking: { details: HTMLDetailsElement; summary: HTMLElement; body: HTMLElement; t0: number; done: boolean } | undefined;
    let frame = 0;
    const follow = () => this.follow();
    const render = () => {
      frame = 0;
      renderMarkdown(answer, text);
      if (!raw.hidden) raw.textContent = rawText;
      if (!raw.hidden) count.textContent = `${tokens} tokens, shown as raw text: the output is not in the harmony format`;
      follow();
    };
    const later = () => {
      frame ||= requestAnimationFrame(render);
    };
    const endThinking = () => {
      if (!thinking || thinking.done) return;
      thinking.done = true;
      thinking.summary.textContent = `Thought for ${Math.max(1, Math.round((performance.now() - thinking.t0) / 1000))} s`;
      thinking.details.open = false;
    };
    return {
      reasoning(delta) {
        if (!thinking) {
          const summary = h('summary', '', 'Thinking…');
          const body = h('div', 'thinking-text');
          const details = h('details', 'thinking', summary, body);
          details.open = true;
          answer.before(details);
          thinking = { details, summary, body, t0: performance.now(), done: false };
        }
        thinking.body.textContent += delta;
        later();
      },
      content(delta) {
        endThinking();
        text += delta;
        later();
      },
      token(t) {
        tokens++;
        rawText += t;
        if (raw.hidden && tokens >= RAW_AFTER_TOKENS && !text && !thinking) raw.hidden = false;
        later();
      },
      finish(end = {}) {
        cancelAnimationFrame(frame);
        endThinking();
        if (tokens > 0 && !text && !thinking) raw.hidden = false;
        render();
        if (end.stopped) answer.append(h('span', 'end-mark', ' [stopped]'));
        if (end.error) answer.append(h('p', 'end-mark error-text', `[error: ${end.error}]`));
        // The finished answer is what a screen reader announces (aria-busy held it back while streaming).
        box.setAttribute('aria-busy', 'false');
        follow();
      },
      get text() {
        return text;
      },
      get tokens() {
        return tokens;
      },
      get raw() {
        return !raw.hidden;
      },
    };
  }

  private follow(): void {
    if (this.following) this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}
