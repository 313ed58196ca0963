// The demo page in headless Chromium (Debian's chromium, driven by playwright-core): upload, ask, watch it stream.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureImage, root } from '../helpers/fixtures.js';
import { llmReply, startTestServer, type TestServer } from '../server/server-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`[web-page.test] skipped: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it in CI).`);

const notAnImage = { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not really a png') };
// What every output box shows when there is nothing to show.
const cleared = { caption: '—', candidates: 0, vqa: '—', llm: '—', timings: 0, source: false };

async function outputs(page: Page): Promise<typeof cleared> {
  return {
    caption: (await page.getByTestId('caption').textContent())!,
    candidates: await page.getByTestId('candidates').locator('li').count(),
    vqa: (await page.getByTestId('vqa-answer').textContent())!,
    llm: (await page.getByTestId('llm-answer').textContent())!,
    timings: await page.getByTestId('timings').locator('tr').count(),
    source: await page.getByTestId('source').isVisible(),
  };
}

describe.skipIf(!hasChromium)('the demo page in headless Chromium', () => {
  let server: TestServer;
  let browser: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    server = await startTestServer({ fakeLlm: true });
    profile = await mkdtemp(join(tmpdir(), 'vqa-llm-chromium-'));
    // A fresh profile per run: nothing from an earlier session (cache, service workers) can change the page.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1180, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('should upload an image, stream the answer and show the caption, candidates and timings', async () => {
    const sentence = 'The man in the hat is holding a fishing pole.';
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', sentence), chunks: 8 }]);
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.getByTestId('models').textContent()).toContain('tiny-blip');

    await page.getByTestId('image-input').setInputFiles(fixtureImage('fishing.jpg'));
    await page.getByTestId('question').fill("What is in the man's hand?");
    await page.getByTestId('ask').click();

    await page.getByTestId('source').waitFor({ state: 'visible' });
    expect(await page.getByTestId('llm-answer').textContent()).toBe(sentence);
    expect(await page.getByTestId('source').textContent()).toContain('LLM');
    const caption = (await page.getByTestId('caption').textContent())!.trim();
    expect(caption.length).toBeGreaterThan(0);
    expect(caption).not.toBe('…');
    const candidates = page.getByTestId('candidates').locator('li');
    expect(await candidates.count()).toBe(5);
    expect(Number(await candidates.first().locator('.score').textContent())).toBeGreaterThan(0);
    expect(await page.getByTestId('vqa-answer').textContent()).toBe(await candidates.first().locator('.name').textContent());
    expect(await page.getByTestId('timings').locator('tr').count()).toBe(6);
    // The sentence reached the page as several SSE events, not one response.
    expect(server.fakeLlm!.requests.at(-1)!.body.stream).toBe(true);
    expect(pageErrors).toEqual([]);

    await mkdir(join(root, 'test', 'output'), { recursive: true });
    await page.screenshot({ path: join(root, 'test', 'output', 'web-page.png'), fullPage: true });
    await page.close();
  });

  it('should show the server error for something that is not an image, leaving no box loading', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.getByTestId('image-input').setInputFiles(notAnImage);
    await page.getByTestId('question').fill('What is this?');
    await page.getByTestId('ask').click();
    await page.getByTestId('error').waitFor({ state: 'visible' });
    expect(await page.getByTestId('error').textContent()).toMatch(/not|image/i);
    expect(await outputs(page)).toEqual(cleared);
    await page.close();
  });

  it('should clear the previous answer when the next question fails', async () => {
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', 'He holds a fishing pole.') }]);
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.getByTestId('image-input').setInputFiles(fixtureImage('fishing.jpg'));
    await page.getByTestId('question').fill("What is in the man's hand?");
    await page.getByTestId('ask').click();
    await page.getByTestId('source').waitFor({ state: 'visible' });
    expect((await outputs(page)).candidates).toBe(5);

    await page.getByTestId('image-input').setInputFiles(notAnImage);
    await page.getByTestId('ask').click();
    await page.getByTestId('error').waitFor({ state: 'visible' });
    expect(await outputs(page)).toEqual(cleared);
    await page.close();
  });

  it('should have a favicon, and load without a failed request', async () => {
    const page = await browser.newPage();
    const failed: string[] = [];
    page.on('response', (response) => {
      if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.getByTestId('models').textContent()).toContain('tiny-blip');
    const icon = await page.evaluate(async () => {
      const response = await fetch(document.querySelector<HTMLLinkElement>('link[rel="icon"]')!.href);
      return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
    });
    expect(icon).toMatchObject({ status: 200, type: expect.stringContaining('image/svg+xml'), body: expect.stringContaining('<svg') });
    expect(failed).toEqual([]);
    await page.close();
  });

  it('should say "no LLM", not "fallback", when the server has no LLM', async () => {
    const plain = await startTestServer();
    try {
      const page = await browser.newPage();
      await page.goto(`${plain.url}/`);
      await page.getByTestId('image-input').setInputFiles(fixtureImage('fishing.jpg'));
      await page.getByTestId('question').fill("What is in the man's hand?");
      await page.getByTestId('ask').click();
      await page.getByTestId('source').waitFor({ state: 'visible' });
      expect(await page.getByTestId('source').textContent()).toBe('no LLM');
      expect(await page.getByTestId('fallback').textContent()).toMatch(/No LLM is configured/);
      expect(`${await page.getByTestId('source').textContent()} ${await page.getByTestId('fallback').textContent()}`).not.toMatch(/fallback/i);
      // The answer is the VQA model's top candidate as a sentence, shown once.
      const top = (await page.getByTestId('vqa-answer').textContent())!;
      expect((await page.getByTestId('llm-answer').textContent())!.toLowerCase()).toBe(`${top.toLowerCase()}.`);
      await page.close();
    } finally {
      await plain.close();
    }
  });
});
