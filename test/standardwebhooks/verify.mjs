// Verifies recorded hooklog deliveries with the standardwebhooks package.
// Input: a file of JSON lines {"headers":{...},"body":"...","secrets":[...],"tampered":bool}.
// Each delivery must verify with every listed secret, and a tampered one
// with none. Prints the number of checks and exits 1 on the first failure.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const lines = readFileSync(process.argv[2], "utf8").split("\n").filter((l) => l.trim() !== "");
let checks = 0;
for (const [i, line] of lines.entries()) {
  const d = JSON.parse(line);
  for (const secret of d.secrets) {
    let verified = true;
    try {
      new Webhook(secret).verify(d.body, d.headers);
    } catch (err) {
      verified = false;
      if (!d.tampered) {
        console.error(`delivery ${i}: does not verify with a listed secret: ${err.message}`);
        process.exit(1);
      }
    }
    if (verified && d.tampered) {
      console.error(`delivery ${i}: a tampered body verified`);
      process.exit(1);
    }
    checks++;
  }
}
console.log(`${checks} checks passed`);
