/**
 * A student's first day, written the way the SPA's team writes it: against the client generated from the
 * API's OpenAPI document (openapi-typescript + openapi-fetch). CI compiles it with `tsc --strict`; a change
 * to the document that would break such code (a renamed field, a lost enum value, an untyped body) fails.
 */
import createClient, { type Middleware } from "openapi-fetch";

import type { components, paths } from "./api";

type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type ErrorCode = Problem["code"];
export type ChatStreamEvent = Schemas["ChatStreamEvent"];

const PASSWORD = "Correct-horse-2026!";

/** A problem's `code` is an enum: a misspelt code does not compile. */
export function isCode(problem: Problem | undefined, code: ErrorCode): boolean {
  return problem?.code === code;
}

export async function firstDay(baseUrl: string, email: string): Promise<string[]> {
  const api = createClient<paths>({ baseUrl });
  const log: string[] = [];

  // Register, then log in with a wrong password and read the error's code.
  const registered = await api.POST("/api/v1/auth/register", { body: { email, password: PASSWORD, name: "Ada" } });
  if (registered.error) {
    throw new Error(isCode(registered.error, "email_taken") ? "already registered" : registered.error.detail);
  }
  const wrong = await api.POST("/api/v1/auth/login", { body: { email, password: "not-the-password" } });
  if (wrong.error && isCode(wrong.error, "invalid_credentials")) {
    log.push(`wrong password: ${wrong.error.code} (${wrong.response.status}), request ${wrong.error.request_id ?? "?"}`);
  }
  const login = await api.POST("/api/v1/auth/login", { body: { email, password: PASSWORD } });
  if (!login.data) throw new Error(login.error.detail);
  const tokens: Schemas["TokenPayload"] = login.data;
  const authorization: Middleware = {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${tokens.access_token}`);
      return request;
    },
  };
  api.use(authorization);
  const user: Schemas["User"] = tokens.user;
  const level: "beginner" | "intermediate" | "advanced" | "expert" | null = user.skill_level;
  log.push(`signed in as ${user.name} (${level ?? "no level yet"}), csrf ${tokens.csrf_token.length} chars`);

  // Today's exercise, then a submission of its starter code.
  const daily = await api.GET("/api/v1/exercises/daily");
  if (!daily.data) throw new Error(daily.error.detail);
  const exercise: Schemas["Exercise"] = daily.data.exercise;
  const difficulty: "easy" | "medium" | "hard" = exercise.difficulty;
  const submitted = await api.POST("/api/v1/exercises/{exercise_id}/submit", {
    params: { path: { exercise_id: exercise.id } },
    body: { code: exercise.starter_code, time_spent_seconds: 60 },
  });
  if (submitted.error) {
    if (isCode(submitted.error, "sandbox_unavailable")) return [...log, "the sandbox is down; try later"];
    throw new Error(submitted.error.detail);
  }
  const { submission, streak } = submitted.data;
  const failing = submission.results.filter((result) => !result.passed).map((result) => result.name);
  log.push(`${exercise.title} (${difficulty}): ${submission.status}, ${submission.tests_passed}/${submission.tests_total}`);
  log.push(`failing: ${failing.join(", ") || "none"}; streak ${streak.current} (best ${streak.longest})`);

  // Ask the tutor about it, the reply streamed as typed events.
  const conversation = await api.POST("/api/v1/chat/conversations", { body: { exercise_id: exercise.id } });
  if (!conversation.data) throw new Error(conversation.error.detail);
  const streamed = await api.POST("/api/v1/chat/conversations/{conversation_id}/messages/stream", {
    params: { path: { conversation_id: conversation.data.id } },
    body: { content: "Why does my solution fail?" },
    parseAs: "stream",
  });
  if (streamed.error) {
    if (isCode(streamed.error, "rate_limited") || isCode(streamed.error, "quota_exceeded")) {
      return [...log, `the tutor needs a break (${streamed.response.headers.get("Retry-After") ?? "?"} s)`];
    }
    throw new Error(streamed.error.detail);
  }
  let reply = "";
  for await (const event of events(streamed.response)) {
    switch (event.event) {
      case "start":
        log.push(`reply ${event.data.assistant_message_id} to message ${event.data.user_message_id}`);
        break;
      case "delta":
        reply += event.data.content;
        break;
      case "done": {
        const message: Schemas["Message"] = event.data.assistant_message;
        log.push(`tutor (${message.model ?? "?"}, ${message.status}): ${message.content === reply ? "complete" : "differs"}`);
        break;
      }
      case "error":
        log.push(`the reply stopped: ${event.data.code} (${event.data.detail})`);
        break;
      default:
        return unreachable(event);
    }
  }
  return log;
}

/** The SSE frames of a response (`event: <name>`, `data: <json>`) as the document's typed events. */
export async function* events(response: Response): AsyncGenerator<ChatStreamEvent> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      yield parseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
    }
  }
}

function parseFrame(frame: string): ChatStreamEvent {
  const fields = new Map<string, string>();
  for (const line of frame.split("\n")) {
    const colon = line.indexOf(": ");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 2));
  }
  return { event: fields.get("event"), data: JSON.parse(fields.get("data") ?? "null") } as ChatStreamEvent;
}

function unreachable(event: never): never {
  throw new Error(`an event the document does not describe: ${JSON.stringify(event)}`);
}
