// Prints, as JSON, the shape of every type exported by a .d.ts file (for tests/process/clients_js/
// test_types_match_asyncapi.py): objects with their properties (optional or not), arrays, unions,
// literals and primitives, read through the TypeScript compiler's own type checker.
//   node dts_shapes.mjs <package dir with typescript installed> <file.d.ts>
import { createRequire } from "node:module";
import path from "node:path";

const [pkg, file] = process.argv.slice(2);
const ts = createRequire(path.join(pkg, "package.json"))("typescript");
const program = ts.createProgram([file], { strict: true, noEmit: true, types: [] });
const diagnostics = ts.getPreEmitDiagnostics(program);
if (diagnostics.length) {
  console.error(ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => pkg,
                                                     getNewLine: () => "\n" }));
  process.exit(1);
}
const checker = program.getTypeChecker();
const source = program.getSourceFile(file);

function shape(type, depth = 0) {
  if (depth > 12) throw new Error("too deep: " + checker.typeToString(type));
  const f = type.flags;
  if (f & ts.TypeFlags.Null) return { null: true };
  if (f & ts.TypeFlags.StringLiteral) return { const: type.value };
  if (f & ts.TypeFlags.NumberLiteral) return { const: type.value };
  if (f & ts.TypeFlags.BooleanLiteral) return { const: checker.typeToString(type) === "true" };
  if (f & ts.TypeFlags.String) return { type: "string" };
  if (f & ts.TypeFlags.Number) return { type: "number" };
  if (f & ts.TypeFlags.Boolean) return { type: "boolean" };
  if (f & ts.TypeFlags.Union) return booleans(type.types.map((t) => shape(t, depth + 1)));
  if (checker.isArrayType(type)) return { array: shape(checker.getTypeArguments(type)[0], depth + 1) };
  if (f & ts.TypeFlags.Object) {
    const props = {};
    for (const symbol of checker.getPropertiesOfType(type)) {
      const decl = symbol.valueDeclaration || symbol.declarations?.[0];
      const propType = checker.getTypeOfSymbolAtLocation(symbol, decl || source);
      const optional = (symbol.flags & ts.SymbolFlags.Optional) !== 0;
      // Under strict, an optional property's type includes undefined: leave it out.
      const types = propType.flags & ts.TypeFlags.Union ? propType.types : [propType];
      const kept = types.filter((t) => !(optional && t.flags & ts.TypeFlags.Undefined));
      const shapes = kept.length === types.length ? [shape(propType, depth + 1)] : kept.map((t) => shape(t, depth + 1));
      props[symbol.name] = { optional, shape: booleans(shapes) };
    }
    return { object: props };
  }
  if (f & ts.TypeFlags.Never) return { never: true };
  return { unknown: checker.typeToString(type) };
}

/** One shape for several members (a union), with true | false read as boolean. */
function booleans(members) {
  const bools = members.filter((m) => typeof m.const === "boolean");
  if (bools.length === 2) members = [...members.filter((m) => typeof m.const !== "boolean"), { type: "boolean" }];
  const flat = members.flatMap((m) => (m.union ? m.union : [m]));
  return flat.length === 1 ? flat[0] : { union: flat };
}

const out = {};
const moduleSymbol = checker.getSymbolAtLocation(source);
for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
  const decl = symbol.declarations?.[0];
  if (!decl || !(ts.isInterfaceDeclaration(decl) || ts.isTypeAliasDeclaration(decl))) continue;
  out[symbol.name] = shape(checker.getDeclaredTypeOfSymbol(symbol));
}
console.log(JSON.stringify(out));
