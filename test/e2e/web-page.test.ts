// The demo page in headless Chromium (Debian's chromium, driven by playwright-core): upload, ask, watch it stream.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureImage, root } from '../helpers/fixtures.js';
import { llmReply, startTestServer, type TestServer } from '../server/server-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`[web-page.test] skipped: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it in CI).`);

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

  it('should show the server error for something that is not an image', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.getByTestId('image-input').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not really a png') });
    await page.getByTestId('question').fill('What is this?');
    await page.getByTestId('ask').click();
    await page.getByTestId('error').waitFor({ state: 'visible' });
    expect(await page.getByTestId('error').textContent()).toMatch(/not|image/i);
    await page.close();
  });
});
