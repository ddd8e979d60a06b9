/**
 * Function tools -> the `# Tools` section of the developer message, with each JSON Schema
 * written as the TypeScript-like type gpt-oss was trained on. Mirrors the rules of
 * openai/harmony `src/encoding.rs` (`json_schema_to_typescript`, `template_tools_section`),
 * including its quirks (nested objects indent by four spaces but keep the closing brace on the
 * indented line, `integer` becomes `number`, string defaults are quoted unless the schema is an
 * enum), so that prompts match the reference byte for byte.
 */
export interface FunctionTool {
  name: string;
  description?: string;
  /** JSON Schema of the single argument object; omitted => `() => any`. */
  parameters?: Record<string, unknown>;
}

type Schema = Record<string, unknown>;

function isObject(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rust's `str::lines()`: split on \n, drop one trailing \r per line and a final empty line. */
export function rustLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (s.endsWith('\n')) lines.pop();
  return lines;
}

function isEnum(schema: Schema): boolean {
  return Array.isArray(schema.enum) && schema.enum.length > 0;
}

/** serde_json's compact Display for a JSON value. */
function jsonDisplay(v: unknown): string {
  return JSON.stringify(v) ?? 'null';
}

/** `default: ...` comment body: strings quoted as is (no escaping), enum defaults bare, others as JSON. */
function defaultComment(schema: Schema): string | undefined {
  if (!('default' in schema)) return undefined;
  const d = schema.default;
  if (typeof d === 'string') return isEnum(schema) ? `default: ${d}` : `default: "${d}"`;
  return `default: ${jsonDisplay(d)}`;
}

function withNullable(schema: unknown, type: string): string {
  return isObject(schema) && schema.nullable === true && !type.includes('null') ? `${type} | null` : type;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function jsonSchemaToTypeScript(schema: unknown, indent = ''): string {
  if (!isObject(schema)) return 'any';
  if (Array.isArray(schema.oneOf)) {
    let out = '';
    for (const variant of schema.oneOf) {
      out += `\n${indent} | `;
      out += withNullable(variant, jsonSchemaToTypeScript(variant, `${indent}   `));
      const comments: string[] = [];
      if (isObject(variant)) {
        const desc = str(variant.description);
        if (desc !== undefined) comments.push(desc);
        const def = defaultComment(variant);
        if (def !== undefined) comments.push(def);
      }
      if (comments.length) out += ` // ${comments.join(' ')}`;
    }
    return out;
  }
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t): t is string => typeof t === 'string').map((t) => (t === 'integer' ? 'number' : t));
    if (types.length) return types.join(' | ');
  }
  switch (schema.type) {
    case 'object':
      return objectType(schema, indent);
    case 'string': {
      const values = Array.isArray(schema.enum) ? schema.enum.filter((v): v is string => typeof v === 'string') : [];
      return values.length ? values.map((v) => `"${v}"`).join(' | ') : 'string';
    }
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      return 'items' in schema ? `${jsonSchemaToTypeScript(schema.items, indent)}[]` : 'Array<any>';
    default:
      return 'any';
  }
}

function objectType(schema: Schema, indent: string): string {
  let out = '';
  const desc = str(schema.description);
  if (desc !== undefined) out += `${indent}// ${desc}\n`;
  out += '{\n';
  const required = new Set(Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === 'string') : []);
  const props = isObject(schema.properties) ? schema.properties : {};
  for (const [key, rawVal] of Object.entries(props)) {
    const val: Schema = isObject(rawVal) ? rawVal : {};
    const opt = required.has(key) ? '' : '?';
    const title = str(val.title);
    if (title !== undefined) out += `${indent}// ${title}\n${indent}//\n`;
    const valDesc = str(val.description);
    const oneOf = Array.isArray(val.oneOf) ? val.oneOf : undefined;
    if (!('oneOf' in val) && valDesc !== undefined) out += `${indent}// ${valDesc}\n`;
    if (Array.isArray(val.examples) && val.examples.length) {
      out += `${indent}// Examples:\n`;
      for (const ex of val.examples) if (typeof ex === 'string') out += `${indent}// - "${ex}"\n`;
    }
    if (oneOf) {
      out += oneOfProperty(key, opt, val, oneOf, indent);
      continue;
    }
    out += `${indent}${key}${opt}: ${withNullable(val, jsonSchemaToTypeScript(val, `${indent}    `))},`;
    if (!('oneOf' in val)) {
      const def = defaultComment(val);
      if (def !== undefined) out += ` // ${def}`;
    }
    out += '\n';
  }
  return `${out}${indent}}`;
}

/** A property whose schema is a oneOf: its description and default go above, one variant a line. */
function oneOfProperty(key: string, opt: string, val: Schema, variants: unknown[], indent: string): string {
  let out = '';
  const propDesc = str(val.description);
  const first = variants[0];
  const skipDesc = propDesc !== undefined && isObject(first) && str(first.description) === propDesc;
  const descAbove = !skipDesc && propDesc !== undefined;
  if (descAbove) out += `${indent}// ${propDesc}\n`;
  const def = defaultComment(val);
  if (def !== undefined) out += `${indent}// ${def}\n`;
  out += `${indent}${key}${opt}:\n`;
  variants.forEach((variant, i) => {
    out += `${indent} | ${withNullable(variant, jsonSchemaToTypeScript(variant, `${indent}   `))}`;
    const comments: string[] = [];
    if (isObject(variant)) {
      const vDesc = str(variant.description);
      if (!(i === 0 && descAbove) && vDesc !== undefined && vDesc !== propDesc) comments.push(vDesc);
      const vDef = defaultComment(variant);
      if (vDef !== undefined) comments.push(vDef);
    }
    if (comments.length) out += ` // ${comments.join(' ')}`;
    out += '\n';
  });
  return `${out}${indent},\n`;
}

/** `# Tools\n\n## functions\n\nnamespace functions {\n\n...} // namespace functions` */
export function renderToolsSection(tools: FunctionTool[], namespace = 'functions'): string {
  const parts = [`## ${namespace}\n`];
  if (tools.length) {
    parts.push(`namespace ${namespace} {\n`);
    for (const tool of tools) {
      for (const line of rustLines(tool.description ?? '')) parts.push(`// ${line}`);
      parts.push(
        tool.parameters !== undefined
          ? `type ${tool.name} = (_: ${jsonSchemaToTypeScript(tool.parameters, '')}) => any;\n`
          : `type ${tool.name} = () => any;\n`,
      );
    }
    parts.push(`} // namespace ${namespace}`);
  }
  return ['# Tools', parts.join('\n')].join('\n\n');
}
