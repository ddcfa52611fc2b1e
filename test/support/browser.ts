import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, errors, type Browser, type Locator, type Page } from 'playwright-core'
import { ROOT } from './api-process.ts'

/** Debian's chromium (CI installs it in .ci/run); `npx playwright install` is not used. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)
const ARTIFACTS = join(ROOT, 'test', '.artifacts')

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true })
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
    timeout: 120_000,
  })
}

const artifact = (name: string) => join(ARTIFACTS, name)

/**
 * Saves a screenshot to test/.artifacts/ for a reviewer to look at. The picture is evidence, not an
 * assertion: on a loaded machine Chromium can take longer than any fair timeout to capture a page
 * (CI once waited 30 s on a phone-sized page whose assertions had all passed), so a capture that
 * times out is reported and skipped instead of failing the test. Any other error still fails.
 */
export async function keepScreenshot(target: Page | Locator, name: string, options: { fullPage?: boolean } = {}) {
  const shot = { path: artifact(name), timeout: 20_000, animations: 'disabled' as const }
  try {
    await ('goto' in target ? target.screenshot({ ...shot, ...options }) : target.screenshot(shot))
  } catch (error) {
    if (!(error instanceof errors.TimeoutError)) throw error
    console.warn(`screenshot ${name} not saved: capture timed out after ${shot.timeout} ms (the checks before it ran)`)
  }
}
