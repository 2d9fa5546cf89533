/**
 * Debian's Chromium and ChromeDriver (packages `chromium`, `chromium-driver`), for the browser
 * tests (`*.chromium.it.test.ts`), which drive `/usr/bin/chromium` headless with `playwright-core`.
 * Not a server: `up` installs the packages and checks the browser answers `--version`; each test
 * launches its own headless browser with a fresh profile. Nothing is downloaded from the internet
 * but Debian's packages (no `playwright install`).
 */
import { aptInstall, hasCommand, type ServiceDef, sh } from './service.ts';

/** Where Debian installs the browser; what the tests pass as Playwright's `executablePath`. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** The Chromium "service": installed, never running on its own. */
export const chromium: ServiceDef = {
  name: 'chromium',
  summary: `Debian's headless Chromium + ChromeDriver for browser tests (${CHROMIUM_PATH})`,
  async install() {
    if (!hasCommand('chromium') || !hasCommand('chromedriver')) aptInstall('chromium', 'chromium-driver');
  },
  async start() {
    // Fails loudly when the package is broken (a missing shared library), before any test runs.
    sh(CHROMIUM_PATH, ['--version'], { quiet: true });
  },
  async stop() {},
  isUp: async () => hasCommand('chromium'),
  address: () => CHROMIUM_PATH,
};
