/**
 * Streaming parser over the model's output tokens. The stream starts right after the prompt's
 * `<|start|>assistant`, so the first message's header has no `<|start|>`. Never throws: bad
 * output yields 'malformed' events and the parser resynchronises on the next `<|start|>`.
 */
export type HarmonySpecial = 'start' | 'end' | 'message' | 'channel' | 'constrain' | 'call' | 'return';

export type HarmonyEvent =
  | { type: 'message'; channel: string; recipient?: string; contentType?: string }
  | { type: 'content'; channel: string; recipient?: string; delta: string }
  | { type: 'done'; channel: string; recipient?: string; content: string; end: 'end' | 'call' | 'return' | 'truncated' }
  | { type: 'malformed'; detail: string };

/** SPEC §5 ids of o200k_harmony. */
export const HARMONY_SPECIAL_IDS: Readonly<Record<HarmonySpecial, number>> = {
  start: 200006, end: 200007, message: 200008, channel: 200005, constrain: 200003, call: 200012, return: 200002,
};
/** Ids from here up are special (`<|startoftext|>` 199998 .. reserved 201087). */
const FIRST_SPECIAL_ID = 199998;

interface Header { channel: string; recipient?: string; contentType?: string }

type State =
  | { kind: 'between' } // after a message ended: expecting <|start|>
  | { kind: 'header'; text: string; hasRole: boolean }
  | { kind: 'content'; header: Header; content: string };

export class HarmonyParser {
  private readonly byId = new Map<number, HarmonySpecial>();
  private state: State = { kind: 'header', text: '', hasRole: false };
  private strayText = false;

  constructor(specialIds: Partial<Record<HarmonySpecial, number>> = {}) {
    const ids = { ...HARMONY_SPECIAL_IDS, ...specialIds };
    for (const [name, id] of Object.entries(ids)) this.byId.set(id, name as HarmonySpecial);
  }

  push(id: number, text: string): HarmonyEvent[] {
    const special = this.byId.get(id);
    if (special === undefined && id >= FIRST_SPECIAL_ID) {
      return [{ type: 'malformed', detail: `unexpected special token ${id} ${JSON.stringify(text)} ignored` }];
    }
    const s = this.state;
    switch (s.kind) {
      case 'between':
        return this.between(special, text);
      case 'header':
        return this.inHeader(s, special, text);
      case 'content':
        return this.inContent(s, special, text);
    }
  }

  finish(): HarmonyEvent[] {
    const s = this.state;
    this.state = { kind: 'between' };
    if (s.kind === 'content') return [done(s, 'truncated')];
    if (s.kind === 'header' && (s.text !== '' || s.hasRole)) {
      return [{ type: 'malformed', detail: `stream ended inside a message header ${JSON.stringify(s.text)}` }];
    }
    return [];
  }

  private between(special: HarmonySpecial | undefined, text: string): HarmonyEvent[] {
    if (special === 'start') {
      this.strayText = false;
      this.state = { kind: 'header', text: '', hasRole: true };
      return [];
    }
    if (special === 'channel') {
      // A header without its <|start|>assistant: accept it as the assistant's.
      this.state = { kind: 'header', text: '<|channel|>', hasRole: false };
      return [{ type: 'malformed', detail: 'message header without <|start|>' }];
    }
    if (special === undefined) {
      if (text.trim() === '' || this.strayText) return [];
      this.strayText = true;
      return [{ type: 'malformed', detail: `text outside a message ignored: ${JSON.stringify(text)}` }];
    }
    return [{ type: 'malformed', detail: `<|${special}|> outside a message ignored` }];
  }

  private inHeader(s: Extract<State, { kind: 'header' }>, special: HarmonySpecial | undefined, text: string): HarmonyEvent[] {
    switch (special) {
      case undefined:
        s.text += text;
        return [];
      case 'channel':
      case 'constrain':
        s.text += `<|${special}|>`;
        return [];
      case 'message': {
        const events: HarmonyEvent[] = [];
        const header = parseHeader(s.text, s.hasRole, (detail) => events.push({ type: 'malformed', detail }));
        this.state = { kind: 'content', header, content: '' };
        const ev: HarmonyEvent = { type: 'message', channel: header.channel };
        if (header.recipient !== undefined) ev.recipient = header.recipient;
        if (header.contentType !== undefined) ev.contentType = header.contentType;
        events.push(ev);
        return events;
      }
      case 'start':
        this.state = { kind: 'header', text: '', hasRole: true };
        return [{ type: 'malformed', detail: `unfinished header ${JSON.stringify(s.text)} dropped at <|start|>` }];
      default:
        this.state = { kind: 'between' };
        return [{ type: 'malformed', detail: `<|${special}|> ended a message inside its header ${JSON.stringify(s.text)}` }];
    }
  }

  private inContent(s: Extract<State, { kind: 'content' }>, special: HarmonySpecial | undefined, text: string): HarmonyEvent[] {
    switch (special) {
      case undefined: {
        if (text === '') return [];
        s.content += text;
        const ev: HarmonyEvent = { type: 'content', channel: s.header.channel, delta: text };
        if (s.header.recipient !== undefined) ev.recipient = s.header.recipient;
        return [ev];
      }
      case 'end':
      case 'call':
      case 'return':
        this.state = { kind: 'between' };
        return [done(s, special)];
      case 'start':
        this.state = { kind: 'header', text: '', hasRole: true };
        return [{ type: 'malformed', detail: 'message not ended before <|start|>' }, done(s, 'truncated')];
      default:
        return [{ type: 'malformed', detail: `<|${special}|> inside message content ignored` }];
    }
  }
}

function done(s: Extract<State, { kind: 'content' }>, end: 'end' | 'call' | 'return' | 'truncated'): HarmonyEvent {
  const ev: HarmonyEvent = { type: 'done', channel: s.header.channel, content: s.content, end };
  if (s.header.recipient !== undefined) ev.recipient = s.header.recipient;
  return ev;
}

/**
 * `[role][ to=R]<|channel|>C[ to=R][ <|constrain|>T | T]` -> header (as openai/harmony's
 * parse_header_from_tokens: the channel runs to whitespace or '<'; the last word is the content
 * type unless it is `to=...`). A missing channel is reported and defaults to 'commentary' for a
 * tool call and 'final' otherwise.
 */
function parseHeader(raw: string, hasRole: boolean, report: (detail: string) => void): Header {
  let rest = raw;
  let channel: string | undefined;
  const at = rest.indexOf('<|channel|>');
  if (at >= 0) {
    const after = rest.slice(at + '<|channel|>'.length);
    const m = /^[^\s<]*/.exec(after)![0];
    if (m !== '') channel = m;
    rest = rest.slice(0, at) + ' ' + after.slice(m.length);
  }
  const words = rest.replaceAll('<|constrain|>', ' <|constrain|>').split(/\s+/).filter((w) => w !== '');
  if (hasRole && words.length > 0 && !words[0]!.startsWith('to=') && !words[0]!.startsWith('<|constrain|>')) {
    const role = words.shift()!;
    if (role !== 'assistant') report(`unexpected role ${JSON.stringify(role)} in the model's output`);
  }
  let recipient: string | undefined;
  let contentType: string | undefined;
  const leftovers: string[] = [];
  for (const w of words) {
    if (w.startsWith('to=') && recipient === undefined) recipient = w.slice(3);
    else if (contentType === undefined && (w.startsWith('<|constrain|>') || recipient !== undefined)) contentType = w;
    else leftovers.push(w);
  }
  if (leftovers.length) report(`unexpected words in message header ignored: ${JSON.stringify(leftovers.join(' '))}`);
  if (channel === undefined) {
    channel = recipient !== undefined ? 'commentary' : 'final';
    report(`message header ${JSON.stringify(raw)} has no channel; assuming ${channel}`);
  }
  const h: Header = { channel };
  if (recipient !== undefined) h.recipient = recipient;
  if (contentType !== undefined) h.contentType = contentType;
  return h;
}
