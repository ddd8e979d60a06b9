/**
 * The model's answer as Markdown: marked renders it and DOMPurify removes whatever could run
 * (scripts, event handlers, javascript: links), because model output is untrusted HTML.
 */
import DOMPurify from 'dompurify';
import { marked } from 'marked';

// Links open in a new tab, without giving it this page; an image the model gave no text says what it is.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'IMG' && !node.hasAttribute('alt')) node.setAttribute('alt', 'image in the answer');
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

/** Sanitized HTML of `text` rendered as GitHub-flavoured Markdown. */
export function markdownHtml(text: string): string {
  const html = marked.parse(text, { async: false, gfm: true, breaks: false });
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true } }).trim();
}

/** Renders `text` into `el` (replacing what it held). */
export function renderMarkdown(el: HTMLElement, text: string): void {
  el.innerHTML = markdownHtml(text);
}
