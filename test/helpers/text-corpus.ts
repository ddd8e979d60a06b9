/**
 * Text corpora for tokenizer tests: SPEC §5's prompt and ids, a varied hand-written corpus (scripts,
 * emoji, code, numbers, whitespace, special-token strings) and a seeded fuzz corpus.
 */

/** The harmony formatting tokens and their o200k_harmony ids (SPEC §5). */
export const SPECIALS: Record<string, number> = {
  '<|startoftext|>': 199998, '<|endoftext|>': 199999, '<|return|>': 200002, '<|constrain|>': 200003,
  '<|channel|>': 200005, '<|start|>': 200006, '<|end|>': 200007, '<|message|>': 200008, '<|call|>': 200012,
};

/** SPEC §5: system (reasoning medium, no date), user "What is 2 + 2?", then <|start|>assistant. */
export const SPEC_TEXT =
  '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\n\n' +
  'Reasoning: medium\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>' +
  '<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant';
export const SPEC_IDS = [
  200006, 17360, 200008, 3575, 553, 17554, 162016, 11, 261, 4410, 6439, 2359, 22203, 656, 7788, 17527, 558, 87447, 100594, 25, 220, 1323, 19, 12,
  3218, 279, 30377, 289, 25, 14093, 279, 2, 13888, 18403, 25, 8450, 11, 49159, 11, 1721, 13, 21030, 2804, 413, 7360, 395, 1753, 3176, 13, 200007,
  200006, 1428, 200008, 4827, 382, 220, 17, 659, 220, 17, 30, 200007, 200006, 173781,
];

export const VARIED: string[] = [
  'Grüße, 世界! 👩‍🔬 naïve café — ok\n\tcode();',
  'Ça va? Crème brûlée, smörgåsbord, Łódź, İstanbul, ǅemal, ﬁne, Ångström, señor, Øre',
  'Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЖИК',
  'Ξεσκεπάζω τὴν ψυχοφθόρα βδελυγμία. ΑΒΓΔ ς',
  'نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ١٢٣٤٥',
  'דג סקרן שט בים מאוכזב ולפתע מצא חברה שָׁלוֹם',
  'ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम',
  'เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน',
  '我能吞下玻璃而不伤身体。日本語のテキスト、カタカナ、ひらがな。𠜎𠜱𠝹𠱓',
  '키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다. ㄱㄴㄷ',
  '👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🧑🏿‍🚀 ❤️‍🔥 🇯🇵🇫🇷 1️⃣ 🫠🫶🏻 👁️‍🗨️',
  'e\u0301 a\u0308\u0323 Z\u0351\u0352\u0353\u0354 q\u0307\u0323 \u1100\u1161\u11a8',
  'export async function f<T extends object>(x: T): Promise<Map<string, T[]>> {\n  return new Map([["k", [x]]]);\n}\n',
  'def fib(n: int) -> int:\n    """Return n-th Fibonacci."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n',
  '{"name": "gpt-oss", "vals": [1, 2.5, -3e-7, null, true], "nested": {"a": {"b": []}}, "s": "\\u00e9\\n"}',
  String.raw`/^(?:[a-z0-9!#$%&'*+/=?^_\x60{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_\x60{|}~-]+)*)@(?:\d{1,3}\.){3}\d{1,3}$/giu`,
  '1234567890123456789012345678901234567890 3.14159265358979 0.000001 1,234,567 -42 1e100 ½ ٣ ① 2024-06-30T12:34:56Z',
  'a     b\t\t\tc\n\n\nd \t \n \r\n e   \n\n   \t\t  ',
  '                                                                 ',
  '\n\n\n\n\n\n\n\n\n\n\t\t\t\t\t\t        \r\n\r\n\r\n   trailing   ',
  "I'm sure you've it's they'll we'd I'D THEY'RE Don't",
  '<|start|>user<|message|>hi <|end|><|call|><|return|><|constrain|><|channel|> <|endoftext|>x<|startoftext|>',
  'text<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>',
  '<|start|> <|not_special|> <|reserved_200013|> <| start |> <|START|> |><|',
  '\u0000\u0001\u001f\u007f\u0080\u00a0\u00ad\u200b\u200d\u2028\u2029\ufeff\ufffd',
  SPEC_TEXT,
];

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Code point ranges (no lone surrogates: they are not text and do not survive UTF-8). */
const BLOCKS: [number, number][] = [
  [0x20, 0x7e], [0x20, 0x7e], [0x30, 0x39], [0x09, 0x0d], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x3040, 0x30ff],
  [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xfe00, 0xfe0f], [0xff00, 0xffef], [0x1f300, 0x1faff], [0x1f3fb, 0x1f3ff], [0x20000, 0x2a6df],
];

export function fuzzCorpus(count: number, seed = 1234): string[] {
  const rnd = mulberry32(seed);
  const specials = Object.keys(SPECIALS);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = 1 + Math.floor(rnd() * 40);
    let s = '';
    for (let j = 0; j < len; j++) {
      const r = rnd();
      if (r < 0.03) s += specials[Math.floor(rnd() * specials.length)];
      else if (r < 0.06) s += '\u200d';
      else if (r < 0.12) s += ' '.repeat(1 + Math.floor(rnd() * 4));
      else {
        const [lo, hi] = BLOCKS[Math.floor(rnd() * BLOCKS.length)]!;
        s += String.fromCodePoint(lo + Math.floor(rnd() * (hi - lo + 1)));
      }
    }
    out.push(s);
  }
  return out;
}

/** A long document: prose, code, lists and numbers in several scripts, with every kind of line break. */
export function longDocument(units: number, seed = 7): string {
  const pieces = [...VARIED, SPEC_TEXT, 'The quick brown fox jumps over the lazy dog. ', 'for (let i = 0; i < n; i++) sum += a[i] * 2;\n',
    '- item one\n- item two\n\n', '1234 5678 90 ', 'Paragraph.\r\n', '    indented line\n', '/path/to/file\n/next', "it's done, we'll see. "];
  const rnd = mulberry32(seed);
  let s = '';
  while (s.length < units) s += pieces[Math.floor(rnd() * pieces.length)];
  return s;
}
