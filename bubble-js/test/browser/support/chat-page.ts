/**
 * One user of the web chat in one browser window, driven the way a person
 * uses it (typing, clicking, scrolling), and read back through the DOM
 * states the page exposes (data attributes). Every wait is bounded and its
 * failure says what was awaited and what the page showed instead.
 */
import type { Browser, EvaluateFunc, Page } from "puppeteer-core";

/** How long one step may take before the test fails. */
export const STEP_MS = 15_000;

/** What a message on screen is. */
export interface ShownMessage {
  text: string;
  out: boolean;
  state: string;
  recalled: boolean;
}

/** Numbers screenshots across a run, in the order they are taken. */
export class Screenshots {
  private taken = 0;
  constructor(readonly dir: string) {}

  next(name: string): string {
    this.taken += 1;
    return `${this.dir}/${String(this.taken).padStart(2, "0")}-${name}.png`;
  }
}

/** A phone-sized window (the chat shows one column); wide ones show two. */
export const PHONE = { width: 390, height: 780 };

export class ChatPage {
  private readonly problems: string[] = [];
  /** Exceptions the page's scripts did not catch: bugs, whatever the test checked. */
  readonly uncaught: string[] = [];

  private constructor(
    readonly page: Page,
    readonly user: string,
    private readonly shots: Screenshots,
  ) {
    // Errors in the page fail the test's messages with context, not silently.
    page.on("pageerror", (error) => {
      this.uncaught.push((error as Error).message);
      this.problems.push(`page error: ${(error as Error).message}`);
    });
    page.on("console", (message) => {
      if (message.type() === "error") this.problems.push(`console: ${message.text()}`);
    });
  }

  /** A new window at `url`, signed in as `user`, connected. */
  static async signIn(browser: Browser, url: string, user: string, shots: Screenshots, size = PHONE): Promise<ChatPage> {
    // Its own window: visible like a person's (a background tab is hidden and would not mark messages read).
    const page = await browser.newPage({ type: "window" });
    await page.setViewport(size);
    const chat = new ChatPage(page, user, shots);
    await page.goto(url, { timeout: STEP_MS });
    await chat.waitFor('#app[data-screen="login"]', "the login screen");
    await page.type("#login-user", user);
    await page.click("#login-submit");
    await chat.waitFor('#app[data-screen="list"][data-connection="online"]', `${user} to be signed in and online`);
    return chat;
  }

  /** Waits for `selector` to match; fails naming `what`. */
  async waitFor(selector: string, what: string, timeout = STEP_MS): Promise<void> {
    try {
      await this.page.waitForSelector(selector, { timeout });
    } catch (error) {
      throw await this.failure(`timed out after ${timeout} ms waiting for ${what} (${selector})`, error);
    }
  }

  /** Waits until `predicate(arg)` is true in the page; fails naming `what`. */
  async waitUntil<A>(predicate: (arg: A) => boolean, arg: A, what: string, timeout = STEP_MS): Promise<void> {
    try {
      // The predicate runs in the page; `arg` travels as JSON, never a handle.
      await this.page.waitForFunction(predicate as EvaluateFunc<[A]>, { timeout, polling: "mutation" }, arg);
    } catch (error) {
      throw await this.failure(`timed out after ${timeout} ms waiting for ${what}`, error);
    }
  }

  /** An error saying what was awaited, what the page shows, and what went wrong in it. */
  private async failure(what: string, cause: unknown): Promise<Error> {
    const shown = await this.describe().catch((e) => `(the page could not be read: ${String(e)})`);
    return new Error(`${this.user}: ${what}\n${shown}${this.problems.length ? `\n${this.problems.join("\n")}` : ""}`, { cause });
  }

  /** The screen, the connection, the rows and the messages, as text. */
  async describe(): Promise<string> {
    return this.page.evaluate(() => {
      const app = document.getElementById("app")!;
      const rows = [...document.querySelectorAll<HTMLElement>("#conversation-list .row")].map((r) => `${r.dataset.conversation} unread=${r.dataset.unread}`);
      const messages = [...document.querySelectorAll<HTMLElement>("#message-list .msg")].map((m) => `${m.classList.contains("out") ? ">" : "<"} ${m.querySelector(".text")?.textContent} [${m.dataset.state}]`);
      const toast = document.getElementById("toast")!;
      return [
        `screen=${app.dataset.screen} connection=${app.dataset.connection}`,
        `rows: ${rows.join("; ") || "(none)"}`,
        `messages: ${messages.join(" | ") || "(none)"}`,
        toast.hidden ? "" : `toast: ${toast.textContent}`,
      ].join("\n");
    });
  }

  /** Saves a screenshot of this window as the run's next step; returns its path. */
  async screenshot(name: string): Promise<string> {
    const path = this.shots.next(`${this.user}-${name}`);
    await this.page.screenshot({ path: path as `${string}.png` });
    return path;
  }

  /** Starts (or opens) a 1:1 with `peer` through "New chat". */
  async startChatWith(peer: string): Promise<void> {
    await this.page.click("#new-chat");
    await this.waitFor("#new-chat-dialog[open]", "the new chat dialog");
    await this.page.type("#new-chat-id", peer);
    await this.page.keyboard.press("Enter");
    await this.waitFor(`#app[data-screen="thread"] #thread[data-conversation="direct:${peer}"]`, `the conversation with ${peer} to open`);
  }

  /** Opens a conversation from the list by its key, e.g. "direct:bob". */
  async open(key: string): Promise<void> {
    await this.waitFor(`.row[data-conversation="${key}"]`, `a row for ${key}`);
    await this.page.click(`#conversation-list .row[data-conversation="${key}"] .row-button`);
    await this.waitFor(`#thread[data-conversation="${key}"]`, `${key} to open`);
    await this.waitFor('#history-status:not([data-loading="true"])', `the first page of ${key}`);
  }

  /** Back to the list (the phone layout shows one column). */
  async back(): Promise<void> {
    await this.page.click("#back");
    await this.waitFor('#app[data-screen="list"]', "the conversation list");
  }

  /** Types `text` into the composer and presses Enter; resolves once the server acknowledged it. */
  async send(text: string): Promise<void> {
    await this.page.type("#composer-input", text);
    await this.page.keyboard.press("Enter");
    await this.waitUntil(
      (t) => [...document.querySelectorAll<HTMLElement>("#message-list .msg.out")].some((m) => m.querySelector(".text")?.textContent === t && m.dataset.state !== "sending"),
      text,
      `"${text}" to be acknowledged by the server`,
    );
  }

  /** Types without sending (the peer sees "typing…"). */
  async typeWithoutSending(text: string): Promise<void> {
    await this.page.type("#composer-input", text);
  }

  /** The open conversation's messages, top to bottom. */
  messages(): Promise<ShownMessage[]> {
    return this.page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>("#message-list .msg")].map((m) => ({
        text: m.querySelector(".text")?.textContent ?? "",
        out: m.classList.contains("out"),
        state: m.dataset.state ?? "",
        recalled: m.dataset.recalled === "true",
      })),
    );
  }

  /** Waits until the open conversation shows each of `texts`. */
  async waitForMessages(texts: string[], what = `messages ${JSON.stringify(texts)}`, timeout = STEP_MS): Promise<void> {
    await this.waitUntil(
      (wanted) => {
        const shown = new Set([...document.querySelectorAll("#message-list .msg .text")].map((t) => t.textContent));
        return wanted.every((t) => shown.has(t));
      },
      texts,
      what,
      timeout,
    );
  }

  /** Waits for the own message `text` to show `state` ("sent", "read"…). */
  async waitForOwnState(text: string, state: string): Promise<void> {
    await this.waitUntil(
      ([t, s]) => [...document.querySelectorAll<HTMLElement>("#message-list .msg.out")].some((m) => m.querySelector(".text")?.textContent === t && m.dataset.state === s),
      [text, state] as const,
      `own message "${text}" to show "${state}"`,
    );
  }

  /** Waits until the client caught up with its inbox after connecting (the SDK's `synced`). */
  async waitForSynced(): Promise<void> {
    await this.waitFor("#app[data-synced]", "the inbox to be synced");
  }

  /** Waits for the row `key` to show `unread` unread messages. */
  async waitForUnread(key: string, unread: number): Promise<void> {
    await this.waitFor(`.row[data-conversation="${key}"][data-unread="${unread}"]`, `${key} to show ${unread} unread`);
  }

  /** The keys of the list's rows, top to bottom. */
  rowOrder(): Promise<string[]> {
    return this.page.evaluate(() => [...document.querySelectorAll<HTMLElement>("#conversation-list .row")].map((r) => r.dataset.conversation ?? ""));
  }

  /** The browser says the network is gone (the page drops its socket) / back. */
  async goOffline(): Promise<void> {
    await this.page.setOfflineMode(true);
    await this.waitFor('#app[data-connection="offline"]', "the page to show it is offline");
  }

  async goOnline(): Promise<void> {
    await this.page.setOfflineMode(false);
    await this.waitFor('#app[data-connection="online"]', "the page to be online again");
  }

  /** Closes the window (the tab and its device session end). */
  async close(): Promise<void> {
    if (!this.page.isClosed()) await this.page.close();
  }
}
