// Runs a whole video job with the official OpenRouter SDK against a mediajobs fake server:
// list models, submit, poll until a terminal status, download the content.
// Usage: node lifecycle.mjs <fake server base URL> <any API key>
// Prints one JSON line: {id, statuses, models, bytes, sha256}.
import { createHash } from "node:crypto";
import { OpenRouter } from "@openrouter/sdk";

const [baseUrl, apiKey] = process.argv.slice(2);
const client = new OpenRouter({ apiKey, serverURL: `${baseUrl}/api/v1` });

const models = await client.videoGeneration.listVideosModels();
const submitted = await client.videoGeneration.generate({
  videoGenerationRequest: { model: "google/veo-3.1", prompt: "waves at dusk", duration: 4 },
});
const statuses = [submitted.status];
let job = submitted;
for (let polls = 0; !["completed", "failed", "cancelled", "expired"].includes(job.status); polls++) {
  if (polls > 50) throw new Error(`still ${job.status} after ${polls} polls`);
  job = await client.videoGeneration.getGeneration({ jobId: submitted.id });
  statuses.push(job.status);
}
if (job.status !== "completed") throw new Error(`job ended ${job.status}: ${job.error}`);

const stream = await client.videoGeneration.getVideoContent({ jobId: job.id, index: 0 });
const digest = createHash("sha256");
let bytes = 0;
for await (const chunk of stream) {
  digest.update(chunk);
  bytes += chunk.length;
}
console.log(
  JSON.stringify({
    id: job.id,
    statuses,
    models: models.data.map((model) => model.id),
    bytes,
    sha256: digest.digest("hex"),
  }),
);
