// End-to-end: the dashboard in Debian's Chromium (driven by playwright-core) against a real
// `flagpole serve` on a fresh Postgres database. Started by `cargo xtask test` (see
// xtask/src/web_ui.rs), which passes the server's address and admin credentials:
//   FLAGPOLE_URL, FLAGPOLE_ADMIN_TOKEN, FLAGPOLE_ADMIN_EMAIL, FLAGPOLE_ADMIN_PASSWORD
// and the server's throwaway database, FLAGPOLE_E2E_DATABASE_URL, which the lifecycle step
// writes with psql to make a flag 10 days old (the server decides staleness by its clock).
// Screenshots of the main pages go to e2e/screenshots/ (ignored by git).
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const URL_ = process.env.FLAGPOLE_URL ?? 'http://127.0.0.1:8080'
const TOKEN = process.env.FLAGPOLE_ADMIN_TOKEN
const EMAIL = process.env.FLAGPOLE_ADMIN_EMAIL ?? 'admin@flagpole.local'
const PASSWORD = process.env.FLAGPOLE_ADMIN_PASSWORD
const DATABASE_URL = process.env.FLAGPOLE_E2E_DATABASE_URL
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots')
const PROJECT = 'shop'
const FLAG = 'checkout-v2'
const READER = { email: 'reader@example.com', password: 'reader-password-1' }

if (!TOKEN || !PASSWORD) throw new Error('FLAGPOLE_ADMIN_TOKEN and FLAGPOLE_ADMIN_PASSWORD are required')
if (!DATABASE_URL) throw new Error('FLAGPOLE_E2E_DATABASE_URL is required (the server database, for the lifecycle step)')
// Only this run's screenshots remain.
rmSync(SHOTS, { recursive: true, force: true })
mkdirSync(SHOTS, { recursive: true })

let step = 'start'
const log = (s) => {
  step = s
  console.log(`e2e: ${s}`)
}
function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`)
}

async function rest(method, path, body) {
  const res = await fetch(URL_ + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : null
}

const shots = []
/** Follows a link in the header and waits for its page. A click returns before the route
 * changes, and the page being left often has fields and switches of the same names (the
 * flag page's switch, the environments page's Name), so acting at once acts on it. */
async function nav(page, link, heading) {
  const target = page.getByRole('link', { name: link, exact: true }).first()
  if (!(await target.isVisible())) await openAccountMenu(page)
  await target.click()
  await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor()
}

/** The header's account menu holds the account page, tokens, users and sign-out. */
async function openAccountMenu(page) {
  await page.locator('header.top .account-menu > summary').click()
  await page.getByRole('navigation', { name: 'Account' }).waitFor()
}

async function signOut(page) {
  await openAccountMenu(page)
  await page.getByRole('button', { name: 'Sign out' }).click()
}

/** One SQL statement on the server's throwaway database. */
function psql(sql) {
  return execFileSync('psql', [DATABASE_URL, '-v', 'ON_ERROR_STOP=1', '-tAqc', sql], { encoding: 'utf8', timeout: 10_000 })
}

async function shot(page, name) {
  const file = join(SHOTS, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  shots.push(file)
}

/** Confirms the review dialog every change to a critical environment goes through. */
async function confirmReview(page, confirmLabel, comment) {
  const review = page.getByRole('dialog')
  await review.waitFor()
  await review.locator('table.diff').first().waitFor()
  if (comment) await review.getByLabel(/^Comment/).fill(comment)
  // Wait for this dialog by its title: the answer may open another one at once (a conflict).
  const title = await review.getByRole('heading').first().textContent()
  await review.getByRole('button', { name: confirmLabel, exact: true }).click()
  await page.getByRole('dialog', { name: title, exact: true }).waitFor({ state: 'detached' })
}

async function signIn(page, who) {
  await page.goto(URL_ + '/')
  await page.getByLabel('Email').fill(who.email)
  await page.getByLabel('Password').fill(who.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Flags' }).waitFor()
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ],
})
const failedRequests = []
let exitCode = 0
try {
  log('seeding a reader through the REST API')
  await rest('POST', '/api/v1/users', { ...READER, role: 'reader' })

  const admin = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await admin.newPage()
  page.on('requestfailed', (r) => {
    // EventSource connections are aborted on navigation; that is not a failure.
    if (!r.url().endsWith('/events')) failedRequests.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`)
  })
  page.on('pageerror', (e) => failedRequests.push(`page error: ${e.message}`))

  log('sign in')
  await page.goto(URL_ + '/')
  await page.getByRole('button', { name: 'Sign in' }).waitFor()
  await shot(page, '01-sign-in')
  await page.getByLabel('Email').fill(EMAIL)
  await page.getByLabel('Password').fill('wrong password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').waitFor()
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Sign in' }).click()

  log('create the first project')
  await page.getByText('No projects yet.').waitFor()
  await page.getByLabel('Project key').fill(PROJECT)
  await page.getByLabel('Name').fill('Shop')
  await page.getByRole('button', { name: 'Create project' }).click()
  await page.getByRole('heading', { name: 'Flags' }).waitFor()
  await page.getByText('No flags yet.').waitFor()
  assert(page.url().endsWith(`/p/${PROJECT}/flags`), `landed on ${page.url()}`)
  await page.getByTestId('live').getByText('Live').waitFor()

  log('create a flag')
  await page.getByRole('button', { name: 'New flag' }).click()
  await page.getByLabel('Key').fill(FLAG)
  await page.getByLabel('Name').fill('Checkout v2')
  await page.getByLabel('Tags').fill('web, checkout')
  await page.getByRole('button', { name: 'Create flag' }).click()
  await page.getByRole('heading', { name: 'Checkout v2' }).waitFor()
  assert(page.url().endsWith(`/p/${PROJECT}/flags/${FLAG}`), `flag page url ${page.url()}`)
  // Production, critical from the start, is the tab opened first: it is the one people
  // come to change.
  await page.getByRole('tab', { name: /production/i, selected: true }).waitFor()

  log('add a rule; the server names the empty attribute')
  await page.getByRole('button', { name: 'Add rule' }).click()
  const rule = page.getByRole('listitem', { name: 'Rule 1' })
  await rule.getByLabel('Values (comma-separated)').fill('pro, enterprise')
  await rule.getByLabel('Rule 1 serves').selectOption('on')
  await page.getByRole('button', { name: /^Save production/i }).click()
  await confirmReview(page, 'Save')
  const attributeError = rule.getByRole('group', { name: 'Rule 1 condition 1' }).locator('.field-error')
  await attributeError.first().waitFor()
  console.log(`e2e:   server error shown at the clause: ${await attributeError.first().textContent()}`)
  await rule.getByLabel('Attribute').fill('plan')

  log('a 30/70 rollout as the default; 30 alone is refused before sending')
  await page.getByLabel('Default serves', { exact: true }).selectOption('__rollout')
  const rollout = page.getByRole('group', { name: 'Default serves: rollout' })
  await rollout.getByLabel('on', { exact: true }).fill('30')
  await rollout.getByLabel('off', { exact: true }).fill('0')
  await rollout.getByText(/must add up to 100%/).waitFor()
  await page.getByRole('button', { name: /^Save production/i }).click()
  await page.getByText('Fix the highlighted fields before saving.').waitFor()
  await rollout.getByLabel('off', { exact: true }).fill('70')
  await rollout.getByText('Total: 100%').waitFor()
  await page.getByRole('button', { name: /^Save production/i }).click()
  await confirmReview(page, 'Save')
  await page.getByText(/Saved as version 2/).waitFor()
  await shot(page, '03-flag-rules-rollout')
  const stored = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}`)
  const prod = stored.environments.production
  assert(prod.rules[0].clauses[0].attribute === 'plan', 'rule attribute stored')
  assert(
    JSON.stringify(prod.default_serve.rollout.weights) ===
      JSON.stringify([{ variant: 'on', weight: 30000 }, { variant: 'off', weight: 70000 }]),
    `rollout stored: ${JSON.stringify(prod.default_serve)}`,
  )

  log('turn it on in production through the confirmation')
  await nav(page, 'Flags', 'Flags')
  const prodSwitch = page.getByRole('switch', { name: new RegExp(`${FLAG} in production`, 'i') })
  await prodSwitch.click()
  const dialog = page.getByRole('dialog')
  await dialog.waitFor()
  await shot(page, '04-confirm-production-toggle')
  // Cancel first: nothing changes.
  await dialog.getByRole('button', { name: 'Cancel' }).click()
  assert((await prodSwitch.getAttribute('aria-checked')) === 'false', 'cancel leaves it off')
  await prodSwitch.click()
  await page.getByRole('dialog').getByRole('button', { name: 'Turn on' }).click()
  await page.waitForFunction(
    (name) => document.querySelector(`[role=switch][aria-label="${name}"]`)?.getAttribute('aria-checked') === 'true',
    `${FLAG} in ${(await prodSwitch.getAttribute('aria-label')).split(' in ')[1]}`,
  )
  await shot(page, '02-flags-list')

  log('the audit log shows the toggle with a readable diff')
  await nav(page, 'Audit log', 'Audit log')
  const entry = page.locator('li', { hasText: 'Turned on from the dashboard' }).first()
  await entry.waitFor()
  await entry.getByRole('button', { name: 'Show changes' }).click()
  await entry.locator('table.diff').getByText('enabled').first().waitFor()
  await shot(page, '05-audit-log')

  log('history says which environments changed; a revert of one environment leaves Production as it was')
  await entry.getByRole('link', { name: FLAG }).click()
  await page.getByRole('heading', { name: 'History' }).waitFor()
  // v4: staging on; v5: production killed during an incident.
  await rest('POST', `/api/v1/projects/${PROJECT}/flags/${FLAG}/environments/staging/toggle`, { enabled: true })
  await rest('POST', `/api/v1/projects/${PROJECT}/flags/${FLAG}/environments/production/toggle`, {
    enabled: false,
    comment: 'incident: checkout errors',
  })
  await page.getByTestId('flag-version').and(page.getByText('5', { exact: true })).waitFor()
  await page.getByTestId('changed-v5').getByText('Production').waitFor()
  await page.getByTestId('changed-v4').getByText('Staging').waitFor()
  const productionBefore = (await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}`)).environments.production
  await page.getByRole('button', { name: 'Revert to v3' }).click()
  const revertDialog = page.getByRole('dialog', { name: `Revert ${FLAG} to version 3?` })
  await revertDialog.getByLabel('What to restore').selectOption('staging')
  const preview = revertDialog.getByTestId('revert-preview')
  await preview.locator('[data-env=staging]').getByText('on → off').waitFor()
  assert((await preview.locator('[data-env]').count()) === 1, 'only staging is listed')
  assert((await revertDialog.getByRole('alert').count()) === 0, 'no warning for staging')
  await shot(page, '15-revert-one-environment')
  await revertDialog.getByRole('button', { name: 'Revert Staging' }).click()
  await page.getByText(/Reverted Staging to version 3; now version 6/).waitFor()
  const afterOne = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}`)
  assert(afterOne.environments.staging.enabled === false, 'staging restored to off')
  assert(
    JSON.stringify(afterOne.environments.production) === JSON.stringify(productionBefore),
    `production untouched: ${JSON.stringify(afterOne.environments.production)}`,
  )

  log('a whole-flag revert lists the environments it changes and warns that it turns Production on')
  await page.getByRole('button', { name: 'Revert to v3' }).click()
  await revertDialog.getByLabel('What to restore').selectOption('')
  const warning = revertDialog.getByRole('alert').filter({ hasText: 'critical environment' })
  await warning.waitFor()
  const warningText = await warning.textContent()
  assert(/ON in Production/.test(warningText), `warning: ${warningText}`)
  await preview.locator('[data-env=production]').getByText('off → on').waitFor()
  await shot(page, '16-revert-whole-flag-warning')
  await revertDialog.getByRole('button', { name: 'Cancel' }).click()
  await revertDialog.waitFor({ state: 'detached' })
  assert(
    (await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}`)).version === 6,
    'cancelling the whole-flag revert wrote nothing',
  )
  await shot(page, '06-flag-history-reverted')

  log('a change made through the REST API appears live, without a reload')
  await nav(page, 'Flags', 'Flags')
  await prodSwitch.and(page.locator('[aria-checked=false]')).waitFor()
  const navigations = []
  page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()))
  const before = Date.now()
  await rest('POST', `/api/v1/projects/${PROJECT}/flags/${FLAG}/environments/production/toggle`, {
    enabled: true,
    comment: 'kill switch flipped back by automation',
  })
  const sent = Date.now()
  await page.waitForFunction(
    () => [...document.querySelectorAll('[role=switch]')].some((s) => /production/i.test(s.getAttribute('aria-label')) && s.getAttribute('aria-checked') === 'true'),
    undefined,
    { polling: 'raf', timeout: 5000 },
  )
  const seen = Date.now()
  console.log(`e2e:   REST call took ${sent - before} ms; the page showed it ${seen - sent} ms after the answer`)
  assert(seen - sent <= 1000, `live update took ${seen - sent} ms`)
  assert(navigations.length === 0, `the page reloaded: ${navigations}`)

  log('the evaluation debugger explains a rule match and a rollout')
  await nav(page, 'Debugger', 'Evaluation debugger')
  await page.getByLabel('Environment').selectOption('production')
  await page.getByLabel('Targeting key').fill('user-1')
  await page.getByLabel('Attributes (JSON object)').fill('{"plan": "pro"}')
  await page.getByRole('button', { name: 'Evaluate' }).click()
  const row = page.locator(`tr[data-result="${FLAG}"]`)
  await row.getByText('RULE_MATCH').waitFor()
  assert((await row.textContent()).includes('Rule 1'), `debugger row: ${await row.textContent()}`)
  await page.getByLabel('Flag', { exact: true }).selectOption(FLAG)
  await page.getByLabel('Attributes (JSON object)').fill('{"plan": "free"}')
  await page.getByRole('button', { name: 'Evaluate' }).click()
  await row.getByText('FALLTHROUGH').waitFor()
  assert((await row.textContent()).includes('rollout'), `rollout reason: ${await row.textContent()}`)
  await shot(page, '07-debugger')

  log('a conflicting edit: the page shows the other change live, then what changed, and reloads')
  await nav(page, 'Flags', 'Flags')
  await page.getByRole('link', { name: 'Checkout v2' }).click()
  const version = Number(await page.getByTestId('flag-version').textContent())
  await page.getByRole('listitem', { name: 'Rule 1' }).getByLabel('Rule 1 description').fill('paying customers')
  await rest('PATCH', `/api/v1/projects/${PROJECT}/flags/${FLAG}`, {
    description: 'Changed by automation while someone edits',
    version,
  })
  await page.getByText('Changed by automation while someone edits').waitFor({ timeout: 2000 })
  await page.getByText('Someone else changed this flag while you were editing').waitFor()
  await page.getByRole('button', { name: /^Save production/i }).click()
  await confirmReview(page, 'Save')
  const conflict = page.getByRole('dialog', { name: 'Someone else changed this flag' })
  await conflict.waitFor()
  await conflict.locator('table.diff').first().getByText('description').waitFor()
  await shot(page, '08-conflict')
  await conflict.getByRole('button', { name: 'Reload their version' }).click()
  await page.getByText('Reloaded the current version; your edits were discarded.').waitFor()
  assert(
    (await page.getByRole('listitem', { name: 'Rule 1' }).getByLabel('Rule 1 description').inputValue()) === '',
    'reload discarded the edit',
  )

  log('keyboard: the kill switch and its confirmation work without a mouse')
  await nav(page, 'Flags', 'Flags')
  // The switch in the flags table (the flag page has one of the same name).
  const listSwitch = page
    .locator('table.flags')
    .getByRole('switch', { name: new RegExp(`${FLAG} in production`, 'i') })
  await listSwitch.focus()
  await page.keyboard.press('Enter')
  const keyDialog = page.getByRole('dialog')
  await keyDialog.waitFor()
  assert((await page.evaluate(() => document.activeElement?.textContent)) === 'Cancel', 'focus starts on Cancel')
  await page.keyboard.press('Escape')
  await keyDialog.waitFor({ state: 'detached' })
  assert(await listSwitch.evaluate((el) => el === document.activeElement), 'focus returns to the switch')
  assert((await listSwitch.getAttribute('aria-checked')) === 'true', 'Escape changed nothing')

  log('critical is a setting of each environment; the project requires comments')
  await nav(page, 'Environments', 'Environments')
  await page.getByRole('heading', { name: /Production production critical/ }).waitFor()
  const staging = page.getByRole('region', { name: /^Staging/ })
  assert(!(await staging.getByRole('checkbox', { name: /^Critical/ }).isChecked()), 'staging is not critical')
  await page.getByRole('checkbox', { name: /Require a comment/ }).click()
  await page.getByRole('checkbox', { name: /Require a comment/ }).and(page.locator(':checked')).waitFor()
  await shot(page, '17-environments-critical')

  log('a save in Production needs a comment, and the audit log shows it')
  await nav(page, 'Flags', 'Flags')
  await page.getByRole('link', { name: 'Checkout v2' }).click()
  await page.getByRole('tab', { name: /production/i, selected: true }).waitFor()
  await page.getByRole('listitem', { name: 'Rule 1' }).getByLabel('Rule 1 description').fill('paying customers')
  await page.getByRole('button', { name: /^Save production/i }).click()
  const review = page.getByRole('dialog', { name: `Save ${FLAG} in Production?` })
  await review.locator('table.diff').getByText('rules[0].description').waitFor()
  const saveButton = review.getByRole('button', { name: 'Save', exact: true })
  assert(await saveButton.isDisabled(), 'Save waits for the required comment')
  const COMMENT = 'Describe rule 1 for the launch review'
  await review.getByLabel('Comment (required)').fill(COMMENT)
  await shot(page, '18-review-requires-comment')
  await saveButton.click()
  await page.getByText(/Saved as version \d+/).waitFor()
  await nav(page, 'Audit log', 'Audit log')
  const commented = page.locator('li', { hasText: COMMENT }).first()
  await commented.getByText('flag_config.update').waitFor()
  await commented.getByText('production').first().waitFor()
  await shot(page, '19-audit-log-comment')
  const versions = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}/versions?limit=1`)
  assert(versions[0].comment === COMMENT, `history comment: ${versions[0].comment}`)

  log('a string flag: the key follows the name, values are typed without JSON quotes')
  const BUTTON = 'checkout-button'
  await nav(page, 'Flags', 'Flags')
  await page.getByRole('button', { name: 'New flag' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Checkout button')
  assert((await page.getByLabel('Key', { exact: true }).inputValue()) === BUTTON, 'key derived from the name')
  await page.getByLabel('Description', { exact: true }).fill('The label of the order button')
  await page.getByLabel('Kind').selectOption('string')
  await page.getByLabel('Variant 1 value').fill('Place order')
  await page.getByLabel('Variant 2 value').fill('Buy now')
  await shot(page, '20-create-string-flag')
  await page.getByRole('button', { name: 'Create flag' }).click()
  await page.getByRole('heading', { name: 'Checkout button' }).waitFor()
  let button = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${BUTTON}`)
  assert(
    JSON.stringify(button.variants) ===
      JSON.stringify([{ key: 'control', value: 'Place order' }, { key: 'treatment', value: 'Buy now' }]),
    `typed string values: ${JSON.stringify(button.variants)}`,
  )
  assert(button.description === 'The label of the order button', 'description stored')
  // Production names `control` everywhere a config can; another flag requires it.
  button = await rest('PUT', `/api/v1/projects/${PROJECT}/flags/${BUTTON}/environments/production`, {
    version: button.version,
    comment: 'targeting for the rename scenario',
    config: {
      enabled: true,
      off_variant: 'control',
      targets: [{ variant: 'control', keys: ['qa-1'] }],
      rules: [
        {
          id: 'pro',
          description: 'Pro plan',
          clauses: [{ attribute: 'plan', op: 'in', values: ['pro'] }],
          serve: { rollout: { weights: [{ variant: 'control', weight: 50000 }, { variant: 'treatment', weight: 50000 }] } },
        },
      ],
      default_serve: { variant: 'control' },
    },
  })
  await rest('POST', `/api/v1/projects/${PROJECT}/flags`, {
    key: 'checkout-banner',
    comment: 'banner follows the button',
    environments: {
      production: {
        enabled: true,
        off_variant: 'off',
        prerequisites: [{ flag: BUTTON, variants: ['control'] }],
        default_serve: { variant: 'on' },
      },
    },
  })

  log('renaming a string variant rewrites every reference in one write')
  // Open it again from the list (a reload would abort the refetches these writes caused).
  await nav(page, 'Flags', 'Flags')
  await page.getByRole('link', { name: 'Checkout button' }).click()
  await page.getByRole('heading', { name: 'Checkout button' }).waitFor()
  await page.getByTestId('flag-version').and(page.getByText(String(button.version), { exact: true })).waitFor()
  const versionBefore = Number(await page.getByTestId('flag-version').textContent())
  await page.getByLabel('Variant 1 key').fill('place-order')
  await page.getByText('renames control everywhere').waitFor()
  await page.getByRole('button', { name: 'Save variants' }).click()
  await confirmReview(page, 'Save variants', 'clearer variant key')
  await page.getByText('Renamed control → place-order in every environment.').waitFor()
  await shot(page, '21-variant-renamed')
  button = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${BUTTON}`)
  assert(button.version === versionBefore + 1, `one version: ${versionBefore} -> ${button.version}`)
  const renamedProd = button.environments.production
  assert(
    renamedProd.off_variant === 'place-order' &&
      renamedProd.targets[0].variant === 'place-order' &&
      renamedProd.rules[0].serve.rollout.weights[0].variant === 'place-order' &&
      renamedProd.default_serve.variant === 'place-order' &&
      button.environments.staging.default_serve.variant === 'place-order',
    `references renamed: ${JSON.stringify(button.environments)}`,
  )
  const banner = await rest('GET', `/api/v1/projects/${PROJECT}/flags/checkout-banner`)
  assert(
    JSON.stringify(banner.environments.production.prerequisites) ===
      JSON.stringify([{ flag: BUTTON, variants: ['place-order'] }]),
    `other flag's prerequisite renamed: ${JSON.stringify(banner.environments.production.prerequisites)}`,
  )

  log('removing a variant still in use: each field named, across environments, with links')
  await page.getByRole('button', { name: 'Remove variant treatment' }).click()
  await page.getByRole('button', { name: 'Save variants' }).click()
  await confirmReview(page, 'Save variants', 'try to drop treatment')
  const summary = page.getByRole('alert').filter({ has: page.getByRole('heading', { name: /fields? (is|are) invalid/ }) })
  await summary.waitFor()
  const summaryText = await summary.textContent()
  assert(/Production › rule 1/.test(summaryText) && /Staging › off variant/.test(summaryText), `summary: ${summaryText}`)
  // A tab with errors says how many; the link opens it and the editor shows the error there.
  await page.getByRole('tab', { name: /Staging.*invalid fields/ }).waitFor()
  await summary.getByRole('button', { name: /^Staging › off variant/ }).click()
  await page.getByRole('tab', { name: /staging/i, selected: true }).waitFor()
  await page.getByRole('tabpanel').locator('.field-error').first().waitFor()
  await shot(page, '22-errors-linked-per-environment')
  await page.getByRole('button', { name: 'Discard', exact: true }).click()

  log('unsaved changes: a mark on the tab, a bar naming the environments, a prompt before leaving')
  await page.getByRole('tab', { name: /production/i }).click()
  await page.getByRole('listitem', { name: 'Rule 1' }).getByLabel('Rule 1 description').fill('Pro plan, 50/50')
  await page.getByRole('tab', { name: /staging/i }).click()
  await page.getByRole('tab', { name: /production.*unsaved changes/i }).waitFor()
  await page.getByLabel('Off variant').selectOption('place-order')
  const bar = page.getByRole('region', { name: 'Unsaved changes' })
  await bar.getByText(/Unsaved changes in (Production, Staging|Staging, Production)/).waitFor()
  await shot(page, '23-unsaved-changes-bar')
  const unloadBlocked = await page.evaluate(() => {
    const e = new Event('beforeunload', { cancelable: true })
    window.dispatchEvent(e)
    return e.defaultPrevented
  })
  assert(unloadBlocked, 'closing the tab asks first')
  await page.getByRole('link', { name: 'Flags', exact: true }).first().click()
  const leave = page.getByRole('dialog', { name: 'Discard unsaved changes?' })
  await leave.getByText(/unsaved changes in (Production, Staging|Staging, Production)/).waitFor()
  await shot(page, '24-leave-prompt')
  await leave.getByRole('button', { name: 'Keep editing' }).click()
  assert(page.url().endsWith(`/flags/${BUTTON}`), `stayed on the flag: ${page.url()}`)
  await bar.getByRole('button', { name: 'Discard changes in Production' }).click()
  await bar.getByText('Unsaved changes in Staging').waitFor()
  await bar.getByRole('button', { name: 'Save changes in Staging' }).click()
  await bar.waitFor({ state: 'detached' })
  button = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${BUTTON}`)
  assert(button.environments.staging.off_variant === 'place-order', 'staging saved from the bar')
  assert(button.environments.production.rules[0].description === 'Pro plan', 'production discarded')
  // No prompt once everything is saved; the flag opens again on Staging, used last.
  await nav(page, 'Flags', 'Flags')
  await page.getByRole('link', { name: 'Checkout button' }).click()
  await page.getByRole('tab', { name: /staging/i, selected: true }).waitFor()
  await page.getByRole('tab', { name: /production/i }).click()

  log('archive a flag, find it under "show archived", restore it')
  await nav(page, 'Flags', 'Flags')
  await page.getByRole('link', { name: 'checkout-banner' }).click()
  await page.getByRole('button', { name: 'Archive flag' }).click()
  await confirmReview(page, 'Archive', 'banner no longer needed')
  await page.getByRole('heading', { name: /checkout-banner.*archived/ }).waitFor()
  await nav(page, 'Flags', 'Flags')
  await page.locator('tr[data-flag="checkout-banner"]').waitFor({ state: 'detached' })
  await page.getByLabel('Show archived flags').check()
  await page.getByTestId('flag-count').getByText('1 archived flag').waitFor()
  const archivedRow = page.locator('tr[data-flag="checkout-banner"]')
  await archivedRow.getByText('archived').first().waitFor()
  await shot(page, '25-archived-flags')
  await archivedRow.getByRole('button', { name: 'Restore checkout-banner' }).click()
  await confirmReview(page, 'Restore', 'banner is back')
  await page.getByText('No archived flags.').waitFor()
  await page.getByLabel('Show archived flags').uncheck()
  await page.locator('tr[data-flag="checkout-banner"]').waitFor()
  assert((await rest('GET', `/api/v1/projects/${PROJECT}/flags/checkout-banner`)).archived === false, 'restored')

  log('the debugger names a rule by its description and fits 390 px')
  await nav(page, 'Debugger', 'Evaluation debugger')
  await page.getByLabel('Environment').selectOption('production')
  await page.getByLabel('Flag', { exact: true }).selectOption(FLAG)
  await page.getByLabel('Attributes (JSON object)').fill('{"plan": "pro"}')
  await page.getByRole('button', { name: 'Evaluate' }).click()
  await row.getByText('RULE_MATCH').waitFor()
  const why = await row.locator('td.why').textContent()
  const stored1 = (await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}`)).environments.production.rules[0]
  assert(why.includes(`“${stored1.description}”`) && !why.includes(stored1.id), `reason names the description: ${why}`)
  await page.setViewportSize({ width: 390, height: 844 })
  const cut = await row.locator('td.why').evaluate((el) => {
    const box = el.getBoundingClientRect()
    return { right: box.right, width: window.innerWidth, clipped: el.scrollWidth > el.clientWidth + 1 }
  })
  assert(cut.right <= cut.width && !cut.clipped, `reason at 390 px: ${JSON.stringify(cut)}`)
  await shot(page, '26-debugger-390')
  await page.setViewportSize({ width: 1280, height: 900 })

  log('the header stays on one row at 1280 px')
  const rows = await page.locator('header.top').evaluate((h) => {
    const tops = [...h.children].filter((c) => c.getBoundingClientRect().height > 2).map((c) => c.getBoundingClientRect())
    return { spread: Math.max(...tops.map((r) => r.top)) - Math.min(...tops.map((r) => r.top)), height: h.getBoundingClientRect().height }
  })
  assert(rows.spread < 12 && rows.height < 64, `header at 1280 px: ${JSON.stringify(rows)}`)
  // One row, and no link scrolled or cut out of sight: every page is one click away.
  const hidden = await page.locator('header.top > nav').evaluate((nav) => {
    const box = nav.getBoundingClientRect()
    return [...nav.querySelectorAll('a')]
      .filter((a) => {
        const r = a.getBoundingClientRect()
        return r.left < box.left - 1 || r.right > box.right + 1 || r.right > window.innerWidth
      })
      .map((a) => a.textContent)
  })
  assert(hidden.length === 0, `header links out of sight at 1280 px: ${hidden.join(', ')}`)
  await page.screenshot({ path: join(SHOTS, '27-header-1280.png') })
  shots.push(join(SHOTS, '27-header-1280.png'))

  log('a field error keeps every label beside its own input')
  await nav(page, 'Flags', 'Flags')
  await page.getByRole('button', { name: 'New flag' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Bad key')
  await page.getByLabel('Key', { exact: true }).fill('bad key!')
  await page.getByRole('button', { name: 'Create flag' }).click()
  const createForm = page.getByRole('form', { name: 'New flag' })
  await createForm.locator('.field-error').first().waitFor()
  const misplaced = await createForm.evaluate((form) =>
    [...form.querySelectorAll(':scope > label[for]')]
      .map((label) => {
        const control = document.getElementById(label.htmlFor)
        const l = label.getBoundingClientRect()
        const c = control.getBoundingClientRect()
        const beside = l.right <= c.left && l.top < c.bottom && l.bottom > c.top
        return beside ? null : `${label.textContent}: label ${JSON.stringify(l)} input ${JSON.stringify(c)}`
      })
      .filter(Boolean),
  )
  assert(misplaced.length === 0, `labels beside the wrong inputs: ${misplaced.join('; ')}`)
  await shot(page, '28-form-field-error')
  await createForm.getByRole('button', { name: 'Cancel' }).click()

  log('the list with 2,000 flags says how many there are and pages through them all')
  // Sorted after `shop`, so the reader below still lands on the shop's flags.
  const BIG = 'thousands'
  await rest('POST', '/api/v1/projects', { key: BIG, name: 'Thousands' })
  const seedStart = Date.now()
  const keys = Array.from({ length: 2000 }, (_, i) => `flag-${String(i).padStart(4, '0')}`)
  // A few in flight: writes to one project queue on its environments' rows, and a deep
  // queue makes the server answer 503 (pool exhausted) rather than wait without bound.
  for (let i = 0; i < keys.length; i += 8) {
    await Promise.all(keys.slice(i, i + 8).map((key) => rest('POST', `/api/v1/projects/${BIG}/flags`, { key })))
  }
  console.log(`e2e:   seeded 2,000 flags through the API in ${Date.now() - seedStart} ms`)
  const listStart = Date.now()
  await page.goto(`${URL_}/p/${BIG}/flags`)
  const count = page.getByTestId('flag-count')
  await count.getByText('2,000 flags · showing 1–100').waitFor()
  console.log(`e2e:   first page of 2,000 flags shown ${Date.now() - listStart} ms after navigation`)
  assert((await page.locator('tr[data-flag]').count()) === 100, 'a page of 100')
  await page.getByRole('button', { name: 'Next', exact: true }).click()
  await count.getByText('showing 101–200').waitFor()
  await page.getByRole('button', { name: 'Last', exact: true }).click()
  await count.getByText('showing 1,901–2,000').waitFor()
  await page.locator('tr[data-flag="flag-1999"]').waitFor()
  await page.getByText('Page 20 of 20').waitFor()
  await shot(page, '29-list-2000-flags')
  await page.getByLabel('Search').fill('flag-123')
  await count.getByText(/^10 flags$/).waitFor()
  await page.goto(`${URL_}/p/${PROJECT}/flags`)
  await page.getByRole('link', { name: 'Checkout v2' }).waitFor()

  log('segments and environments pages')
  await nav(page, 'Segments', 'Segments')
  await page.getByRole('button', { name: 'New segment' }).click()
  await page.getByLabel('Key', { exact: true }).fill('beta-testers')
  await page.getByLabel('Included keys').fill('user-1, user-2')
  await page.getByRole('button', { name: 'Save segment' }).click()
  await page.getByRole('rowheader', { name: /beta-testers/ }).waitFor()
  await page.getByTestId('used-by-beta-testers').getByText('no flags').waitFor()
  await shot(page, '09-segments')
  await nav(page, 'Environments', 'Environments')
  await page.getByLabel('Key name').first().fill('web-frontend')
  await page.getByRole('button', { name: 'Create SDK key' }).first().click()
  // The header's project picker knows the project created in this session.
  const picked = await page.getByLabel('Project', { exact: true }).evaluate((el) => el.selectedOptions[0]?.textContent)
  assert(picked === 'Shop (shop)', `project picker shows ${picked}`)
  const key = await page.getByTestId('new-sdk-key').textContent()
  assert(key.startsWith('fp_sdk_'), `sdk key shown once: ${key}`)
  await shot(page, '10-environments')

  log('connect an application: the curl snippet the guide shows answers with the flag, and the guide sees it')
  const guide = page.getByRole('region', { name: 'Connect an application to Development' })
  const connection = guide.getByTestId('connection-state')
  await connection.getByText('Waiting for the first connection…').waitFor()
  const curl = await guide.getByTestId('snippet-curl').textContent()
  // The guide fills its snippets with one of the project's flags (the first in the list,
  // which depends on what earlier steps created): read which one from the snippet.
  const shown = decodeURIComponent(/\/ofrep\/v1\/evaluate\/flags\/([^"'\s]+)/.exec(curl)?.[1] ?? '')
  const flag = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${shown}`)
  assert(curl.includes(key) && flag.key === shown, `snippet filled in with the new key and a real flag: ${curl}`)
  const [nodeCall, rustCall] = {
    boolean: ['getBooleanValue', 'bool_value'],
    string: ['getStringValue', 'string_value'],
    number: ['getNumberValue', 'number_value'],
    json: ['getObjectValue', 'json_value'],
  }[flag.kind]
  await guide.getByTestId('snippet-node').getByText(`${nodeCall}("${shown}"`).waitFor()
  await guide.getByTestId('snippet-rust').getByText(`${rustCall}("${shown}"`).waitFor()
  await shot(page, '30-connect-guide-waiting')
  const answer = JSON.parse(execFileSync('sh', ['-c', curl], { encoding: 'utf8', timeout: 10_000 }))
  const development = flag.environments.development
  // The curl sends no context attributes, so no rule matches: the off variant, or the
  // default serve (one of its rollout's variants).
  const serve = development.default_serve
  const expected = !development.enabled
    ? [development.off_variant]
    : serve.variant
      ? [serve.variant]
      : serve.rollout.weights.filter((w) => w.weight > 0).map((w) => w.variant)
  const value = flag.variants.find((v) => v.key === answer.variant)?.value
  console.log(`e2e:   the snippet answered ${JSON.stringify(answer)}`)
  assert(
    answer.key === shown && expected.includes(answer.variant) && JSON.stringify(answer.value) === JSON.stringify(value),
    `snippet answer ${JSON.stringify(answer)}, expected one of ${expected}`,
  )
  await connection.getByText(/^Connected: last seen/).waitFor({ timeout: 10_000 })
  await shot(page, '31-connect-guide-connected')

  log('a second project from the picker: the key is derived from the name, and `.` is refused')
  await page.getByLabel('Project', { exact: true }).selectOption({ label: 'New project…' })
  await page.getByRole('heading', { level: 1, name: 'New project' }).waitFor()
  await page.getByLabel('Name').fill('Billing Team')
  assert((await page.getByLabel('Project key').inputValue()) === 'billing-team', 'key derived from the name')
  await page.getByLabel('Project key').fill('.')
  await page.getByRole('button', { name: 'Create project' }).click()
  const keyError = page.getByRole('form', { name: 'New project' }).locator('.field-error')
  await keyError.getByText(/URL segment/).waitFor()
  await shot(page, '32-new-project-refuses-dot')
  const projectKeys = (await rest('GET', '/api/v1/projects')).map((p) => p.key)
  assert(!projectKeys.includes('.'), `refused key stored: ${projectKeys}`)
  await page.getByLabel('Project key').fill('billing')
  await page.getByRole('button', { name: 'Create project' }).click()
  await page.getByRole('heading', { name: 'Flags' }).waitFor()
  assert(page.url().endsWith('/p/billing/flags'), `landed on ${page.url()}`)
  await page.getByRole('list', { name: 'Get started' }).getByRole('link', { name: 'connect an app' }).waitFor()
  const pickedSecond = await page.getByLabel('Project', { exact: true }).evaluate((el) => el.selectedOptions[0]?.textContent)
  assert(pickedSecond === 'Billing Team (billing)', `project picker shows ${pickedSecond}`)
  await shot(page, '33-second-project')
  await page.getByLabel('Project', { exact: true }).selectOption('shop')
  await page.getByRole('link', { name: 'Checkout v2' }).waitFor()
  assert(page.url().endsWith(`/p/${PROJECT}/flags`), `back on ${page.url()}`)

  log('API tokens (shown once) and users, for admins')
  await nav(page, 'API tokens', 'API tokens')
  await page.getByLabel('Name', { exact: true }).fill('ci-deploy')
  await page.getByLabel('Role').selectOption('writer')
  await page.getByRole('button', { name: 'Create token' }).click()
  const token = await page.locator('code.secret').textContent()
  assert(token.startsWith('fp_api_'), `token shown once: ${token}`)
  await page.getByRole('rowheader', { name: /ci-deploy/ }).waitFor()
  await nav(page, 'Users', 'Users')
  await page.getByRole('rowheader', { name: READER.email }).waitFor()
  await shot(page, '14-users')

  log("an admin resets the reader's password; the admin changes their own")
  await page.getByRole('row', { name: new RegExp(READER.email) }).getByRole('button', { name: 'Reset password' }).click()
  const resetDialog = page.getByRole('dialog', { name: `Reset the password of ${READER.email}?` })
  await resetDialog.getByLabel(/^New password/).fill('reset-by-the-admin-1')
  await shot(page, '34-users-reset-password')
  await resetDialog.getByRole('button', { name: 'Reset password' }).click()
  await page.getByText(`${READER.email}: password reset`).waitFor()
  READER.password = 'reset-by-the-admin-1'
  await nav(page, 'Your account', 'Your account')
  const NEW_PASSWORD = 'changed-in-the-browser-1'
  await page.getByLabel('Current password').fill('not the password at all')
  await page.getByLabel(/^New password/).fill(NEW_PASSWORD)
  await page.getByLabel('Repeat the new password').fill(NEW_PASSWORD)
  await page.getByRole('button', { name: 'Change password' }).click()
  await page.getByText('is not your current password').waitFor()
  await page.getByLabel('Current password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Change password' }).click()
  await page.getByText('Password changed.').waitFor()
  await shot(page, '35-account-password-changed')

  log('flag insights: telemetry reported over HTTP shows as a chart and application rows')
  {
    const sdk = await rest('POST', `/api/v1/projects/${PROJECT}/environments/production/sdk-keys`, { name: 'insights-e2e' })
    const now = Date.now()
    const report = async (batch) => {
      const res = await fetch(`${URL_}/sdk/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sdk.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(batch),
      })
      assert(res.status === 202, `POST /sdk/v1/events answered ${res.status} ${await res.text()}`)
    }
    const count = (variant, reason, n) => ({ flag: FLAG, flag_version: 1, variant, reason, start_ms: now - 60_000, end_ms: now, count: n })
    const web = {
      id: crypto.randomUUID(),
      sdk: 'flagpole-rust/0.1.0',
      app: 'checkout-web',
      app_version: '2.3.1',
      counts: [count('on', 'RULE_MATCH', 7), count('off', 'FALLTHROUGH', 5)],
      dropped: 3,
    }
    await report(web)
    // Delivered again (an SDK that missed the acknowledgement): counted once.
    await report(web)
    await report({
      id: crypto.randomUUID(),
      sdk: 'flagpole-rust/0.1.0',
      app: 'mobile-api',
      app_version: '1.0.0',
      counts: [count('on', 'FALLTHROUGH', 2)],
    })
    await nav(page, 'Flags', 'Flags')
    await page.getByRole('link', { name: 'Checkout v2' }).click()
    await page.getByRole('link', { name: 'Insights', exact: true }).click()
    await page.getByRole('heading', { level: 1, name: 'Insights', exact: true }).waitFor()
    await page.getByRole('tab', { name: 'Production', selected: true }).waitFor()
    const totals = page.getByTestId('variant-totals')
    const cellOf = (row) => row.locator('td').first().textContent()
    await totals.locator('tr[data-variant=on]').waitFor()
    assert((await cellOf(totals.locator('tr[data-variant=on]'))) === '9', 'on: 7 + 2 evaluations')
    assert((await cellOf(totals.locator('tr[data-variant=off]'))) === '5', 'off: 5 evaluations')
    // The chart is uPlot's canvas, with one legend entry per variant.
    const chart = page.getByTestId('insights-chart')
    await chart.locator('canvas').first().waitFor()
    const legend = await chart.locator('.u-legend').textContent()
    assert(/on/.test(legend) && /off/.test(legend), `chart legend: ${legend}`)
    const appRow = page.getByTestId('apps').locator('tr[data-app="checkout-web"]')
    const appCells = await appRow.locator('th, td').allTextContents()
    assert(
      JSON.stringify(appCells.slice(0, 4)) === JSON.stringify(['checkout-web 2.3.1', 'flagpole-rust/0.1.0', '12', '3']),
      `checkout-web row: ${appCells}`,
    )
    assert(/just now|min ago/.test(appCells[4]), `last seen: ${appCells[4]}`)
    const mobileCells = await page.getByTestId('apps').locator('tr[data-app="mobile-api"]').locator('th, td').allTextContents()
    assert(mobileCells[2] === '2', `mobile-api row: ${mobileCells}`)
    assert(/dropped 3 /.test(await page.getByTestId('dropped').textContent()), 'dropped figure shown')
    assert(/just now|min ago/.test(await page.getByTestId('last-evaluated').textContent()), 'last evaluated')
    await shot(page, '20-flag-insights')
    // Day buckets come from the daily rollup, run every 30 s by the server: wait for it
    // through the API, then the page shows the same exact totals per day.
    const rolledUp = Date.now()
    for (;;) {
      const day = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}/insights?environment=production&granularity=day`)
      if (day.variants.find((v) => v.variant === 'on')?.total === 9) break
      assert(Date.now() - rolledUp < 45_000, `no daily rollup after 45 s: ${JSON.stringify(day.variants)}`)
      await new Promise((r) => setTimeout(r, 500))
    }
    console.log(`e2e:   daily rollup visible ${Date.now() - rolledUp} ms after the report`)
    await page.getByRole('button', { name: 'Last 30 days' }).click()
    await page.getByRole('button', { name: 'Last 30 days', pressed: true }).waitFor()
    await page.locator('section.insights[data-granularity=day]').waitFor()
    await chart.locator('canvas').first().waitFor()
    await totals.locator('tr[data-variant=on]').waitFor()
    assert((await cellOf(totals.locator('tr[data-variant=on]'))) === '9', 'day view: on 9')
    assert((await cellOf(totals.locator('tr[data-variant=off]'))) === '5', 'day view: off 5')
    // Staging has no reports: the page says so instead of drawing an empty chart.
    await page.getByRole('tab', { name: 'Staging' }).click()
    await page.getByText('No evaluations reported in this range.').waitFor()
    await page.getByText('No SDK has reported to this environment yet.').waitFor()
  }

  log('flag lifecycle: an operational flag past its lifetime is potentially stale, and the list filters by it')
  {
    const NIGHTLY = 'nightly-reindex'
    await nav(page, 'Flags', 'Flags')
    await page.getByRole('button', { name: 'New flag' }).click()
    const form = page.getByRole('form', { name: 'New flag' })
    await form.getByLabel('Name', { exact: true }).fill('Nightly reindex')
    await form.getByLabel('Type', { exact: true }).selectOption('operational')
    await form.getByText(/expected to live 7 days/).waitFor()
    await form.getByRole('button', { name: 'Create flag' }).click()
    await page.getByRole('heading', { level: 1, name: 'Nightly reindex' }).waitFor()
    const created = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${NIGHTLY}`)
    assert(created.type === 'operational' && created.lifecycle.stale === false, `new flag: ${JSON.stringify(created)}`)
    // Ten days pass: the flag was created 10 days before now, on the server's clock.
    psql(`update flag set created_at = created_at - 10 * 86400000 where key = '${NIGHTLY}'`)
    await nav(page, 'Flags', 'Flags')
    const row = page.locator(`tr[data-flag="${NIGHTLY}"]`)
    const badge = row.getByTestId('stale-badge')
    await badge.waitFor()
    const title = await badge.getAttribute('title')
    assert(
      title.includes('lifetime of 7 days for operational flags exceeded (created 10 days ago)') &&
        title.includes('not evaluated in any environment for the last 7 days'),
      `badge tooltip: ${title}`,
    )
    // Checkout v2 is recent and SDKs evaluated it (the insights step): no badge.
    assert((await page.locator(`tr[data-flag="${FLAG}"]`).getByTestId('stale-badge').count()) === 0, 'fresh flag has no badge')
    await row.getByText('Operational').waitFor()
    const lifecycleFilter = page.getByLabel('Lifecycle', { exact: true })
    await lifecycleFilter.selectOption('stale')
    await page.getByTestId('flag-count').getByText(/^1 flag$/).waitFor()
    assert((await page.locator('tr[data-flag]').count()) === 1, 'only the stale flag listed')
    await row.waitFor()
    await shot(page, '36-flags-potentially-stale')
    await lifecycleFilter.selectOption('active')
    await page.locator(`tr[data-flag="${FLAG}"]`).waitFor()
    await row.waitFor({ state: 'detached' })
    await lifecycleFilter.selectOption('all')
    await row.waitFor()

    // The project lets operational flags live 14 days: past that no more, but still unused.
    await nav(page, 'Environments', 'Environments')
    const lifetimes = page.getByRole('form', { name: 'Flag lifetimes' })
    await lifetimes.getByLabel('Operational').fill('0')
    await lifetimes.getByRole('button', { name: 'Save lifetimes' }).click()
    await lifetimes.getByText(/from 1 to 36,500 days/).waitFor()
    await lifetimes.getByLabel('Operational').fill('14')
    await lifetimes.getByRole('button', { name: 'Save lifetimes' }).click()
    await lifetimes.getByText('Lifetimes saved.').waitFor()
    const settings = await rest('GET', `/api/v1/projects/${PROJECT}/lifecycle`)
    assert(settings.lifetimes.operational === 14 && settings.lifetimes.release === 40, `lifetimes: ${JSON.stringify(settings)}`)
    await shot(page, '37-project-flag-lifetimes')
    // The comment requirement saves against the project version the lifetimes bumped.
    const requireComment = page.getByRole('checkbox', { name: /Require a comment/ })
    await requireComment.click()
    await confirmReview(page, 'Stop requiring', 'lifecycle step: off and on again')
    await requireComment.and(page.locator(':not(:checked)')).waitFor()
    await requireComment.click()
    await requireComment.and(page.locator(':checked')).waitFor()

    await nav(page, 'Flags', 'Flags')
    await page.getByRole('link', { name: 'Nightly reindex' }).click()
    const section = page.getByRole('region', { name: /^Lifecycle/ })
    const reasons = section.getByRole('list', { name: 'Why it is potentially stale' })
    await reasons.getByText('not evaluated in any environment for the last 7 days').waitFor()
    assert((await reasons.getByRole('listitem').count()) === 1, 'the lifetime no longer applies')
    // Marked permanent: nothing is stale about it any more.
    await section.getByRole('checkbox', { name: /^Permanent/ }).check()
    await section.getByRole('button', { name: 'Save lifecycle' }).click()
    await section.getByText('Lifecycle saved.').waitFor()
    await section.getByText('permanent', { exact: true }).waitFor()
    assert((await section.getByTestId('stale-badge').count()) === 0, 'permanent flag has no badge')
    await shot(page, '38-flag-lifecycle-permanent')
    await nav(page, 'Flags', 'Flags')
    await page.getByLabel('Lifecycle', { exact: true }).selectOption('stale')
    await page.getByText('No potentially stale flags.').waitFor()
    await page.getByLabel('Lifecycle', { exact: true }).selectOption('all')
  }

  log('narrow screen')
  await page.setViewportSize({ width: 390, height: 844 })
  await nav(page, 'Flags', 'Flags')
  await prodSwitch.waitFor()
  await shot(page, '11-flags-narrow')

  log('sign out; only the changed password signs in again')
  await page.setViewportSize({ width: 1280, height: 900 })
  await signOut(page)
  await page.getByRole('button', { name: 'Sign in' }).waitFor()
  await page.getByLabel('Email').fill(EMAIL)
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').waitFor()
  await page.getByLabel('Password').fill(NEW_PASSWORD)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Flags' }).waitFor()
  await signOut(page)
  await page.getByRole('button', { name: 'Sign in' }).waitFor()

  log('a reader sees no editing controls')
  const readerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const rp = await readerContext.newPage()
  await signIn(rp, READER)
  // A new browser opens the first project (billing); the reader picks the shop.
  await rp.getByLabel('Project', { exact: true }).selectOption('shop')
  await rp.getByRole('link', { name: 'Checkout v2' }).waitFor()
  assert((await rp.getByRole('button', { name: 'New flag' }).count()) === 0, 'reader has no New flag')
  const switches = rp.getByRole('switch')
  for (let i = 0; i < (await switches.count()); i++) {
    assert(await switches.nth(i).isDisabled(), 'reader switches are disabled')
  }
  await shot(rp, '12-reader-flags')
  await rp.getByRole('link', { name: 'Checkout v2' }).click()
  await rp.getByRole('heading', { name: 'History' }).waitFor()
  assert((await rp.getByRole('button', { name: /^Save / }).count()) === 0, 'reader has no Save')
  assert((await rp.getByRole('button', { name: 'Add rule' }).count()) === 0, 'reader has no Add rule')
  assert((await rp.getByRole('button', { name: /^Revert/ }).count()) === 0, 'reader has no Revert')
  assert(await rp.getByRole('listitem', { name: 'Rule 1' }).getByLabel('Attribute').isDisabled(), 'reader inputs disabled')
  // The server refuses regardless of what the page shows.
  const refused = await rp.evaluate(async ([project, flag]) => {
    const me = await (await fetch('/api/v1/auth/me')).json()
    const r = await fetch(`/api/v1/projects/${project}/flags/${flag}/environments/production/toggle`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
      body: JSON.stringify({ enabled: false }),
    })
    return r.status
  }, [PROJECT, FLAG])
  assert(refused === 403, `reader toggle answered ${refused}`)
  await shot(rp, '13-reader-flag-page')
  await readerContext.close()

  log('unsaved edits: Back and the project picker ask first; keep stays, discard leaves')
  await signIn(page, { email: EMAIL, password: NEW_PASSWORD })
  const picker = page.getByLabel('Project', { exact: true })
  if ((await picker.inputValue()) !== PROJECT) {
    await picker.selectOption(PROJECT)
    await page.getByRole('link', { name: 'Checkout v2' }).waitFor()
  }
  const flagUrl = `${URL_}/p/${PROJECT}/flags/${BUTTON}`
  const storedBefore = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${BUTTON}`)
  /** Opens the flag from the list (so Back returns to the list) and leaves an edit unsaved. */
  const editUnsaved = async (description) => {
    await page.getByRole('link', { name: 'Checkout button' }).click()
    await page.getByRole('tab', { name: /production/i }).click()
    await page.getByRole('listitem', { name: 'Rule 1' }).getByLabel('Rule 1 description').fill(description)
    await page.getByRole('region', { name: 'Unsaved changes' }).waitFor()
  }
  const discardPrompt = page.getByRole('dialog', { name: 'Discard unsaved changes?' })
  await editUnsaved('Pro plan, edited')
  await page.goBack({ waitUntil: 'commit' })
  await discardPrompt.getByText('unsaved changes in Production').waitFor()
  await shot(page, '36-back-asks-before-discarding')
  await discardPrompt.getByRole('button', { name: 'Keep editing' }).click()
  await discardPrompt.waitFor({ state: 'detached' })
  assert(page.url() === flagUrl, `kept on the flag: ${page.url()}`)
  const kept = await page.getByRole('listitem', { name: 'Rule 1' }).getByLabel('Rule 1 description').inputValue()
  assert(kept === 'Pro plan, edited', `the edit is still there: ${kept}`)
  await page.goBack({ waitUntil: 'commit' })
  await discardPrompt.getByRole('button', { name: 'Discard' }).click()
  await page.getByRole('heading', { level: 1, name: 'Flags', exact: true }).waitFor()
  assert(page.url() === `${URL_}/p/${PROJECT}/flags`, `Back went to the list: ${page.url()}`)

  await editUnsaved('Pro plan, edited again')
  await picker.selectOption('billing')
  await discardPrompt.getByText('unsaved changes in Production').waitFor()
  await discardPrompt.getByRole('button', { name: 'Keep editing' }).click()
  await discardPrompt.waitFor({ state: 'detached' })
  assert(page.url() === flagUrl, `kept on the flag: ${page.url()}`)
  assert((await picker.inputValue()) === PROJECT, 'the picker still shows the project being edited')
  await picker.selectOption('billing')
  await discardPrompt.getByRole('button', { name: 'Discard' }).click()
  await page.getByRole('list', { name: 'Get started' }).waitFor()
  assert(page.url() === `${URL_}/p/billing/flags`, `the picker went to billing: ${page.url()}`)
  const storedAfter = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${BUTTON}`)
  assert(storedAfter.version === storedBefore.version, 'nothing discarded was saved')

  log('alerts: a mapping made in the browser, Alertmanager firing it, the page showing what it did')
  {
    const alertsContext = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const ap = await alertsContext.newPage()
    ap.on('requestfailed', (r) => {
      if (!r.url().endsWith('/events')) failedRequests.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`)
    })
    ap.on('pageerror', (e) => failedRequests.push(`page error: ${e.message}`))
    await signIn(ap, { email: EMAIL, password: NEW_PASSWORD })
    await ap.getByLabel('Project', { exact: true }).selectOption(PROJECT)
    await ap.getByRole('link', { name: 'Checkout v2' }).waitFor()
    await nav(ap, 'Alerts', 'Alerts')
    await ap.getByText('No alert mappings yet.').waitFor()
    const webhook = await ap.getByTestId('webhook-url').textContent()
    assert(webhook === `${URL_}/api/v1/projects/${PROJECT}/alerts/alertmanager`, `webhook shown: ${webhook}`)
    const form = ap.getByRole('form', { name: 'New alert mapping' })
    await form.getByLabel('Alert name').fill('CheckoutErrors')
    await form.getByRole('button', { name: 'Add matcher' }).click()
    const matcher = form.getByRole('group', { name: 'Matcher 1' })
    await matcher.getByLabel('Label').fill('service')
    await matcher.getByLabel('Value').fill('checkout')
    await form.getByLabel('In environment').selectOption('production')
    // A flag that does not exist: the server names the field, the form shows it there.
    await form.getByLabel('Turn off flag').fill('no-such-flag')
    await form.getByRole('button', { name: 'Create mapping' }).click()
    await form.getByText('no flag `no-such-flag` in project `shop`').waitFor()
    await form.getByLabel('Turn off flag').fill(FLAG)
    await form.getByRole('button', { name: 'Create mapping' }).click()
    const row = ap.getByRole('row', { name: /CheckoutErrors/ })
    await row.waitFor()
    assert((await row.textContent()).includes('service="checkout"'), 'matcher shown as Alertmanager writes it')
    assert((await row.getByTestId('last-fired').textContent()) === 'never', 'not fired yet')

    // Alertmanager's side, through the REST API: an alerts:trigger token and its
    // notification (version 4), with the flag on in production first.
    const alertsToken = await rest('POST', '/api/v1/tokens', {
      name: 'alertmanager',
      role: 'writer',
      project: PROJECT,
      scope: 'alerts:trigger',
    })
    assert(alertsToken.token.startsWith('fp_alert_'), 'an alerts:trigger token')
    await rest('POST', `/api/v1/projects/${PROJECT}/flags/${FLAG}/environments/production/toggle`, {
      enabled: true,
      comment: 'e2e: on before the alert',
    })
    const notification = {
      version: '4',
      status: 'firing',
      receiver: 'flagpole-shop',
      groupKey: '{}:{alertname="CheckoutErrors"}',
      groupLabels: { alertname: 'CheckoutErrors' },
      commonLabels: { alertname: 'CheckoutErrors', service: 'checkout' },
      commonAnnotations: {},
      externalURL: 'http://alertmanager.local:9093',
      truncatedAlerts: 0,
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'CheckoutErrors', service: 'checkout', severity: 'page' },
          annotations: { summary: 'checkout errors' },
          startsAt: new Date().toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: '',
          fingerprint: 'e2e0000000000001',
        },
      ],
    }
    const fired = await fetch(`${URL_}/api/v1/projects/${PROJECT}/alerts/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alertsToken.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(notification),
    })
    const receipt = await fired.json()
    assert(fired.ok && receipt.handled[0]?.outcome === 'turned_off', `webhook: ${fired.status} ${JSON.stringify(receipt)}`)
    // The page follows live: the flag's environment moved to a new version.
    await row.getByText('turned off', { exact: true }).waitFor()
    const last = await row.getByTestId('last-fired').textContent()
    assert(last.includes(`turned \`${FLAG}\` off in \`production\``), `last fired: ${last}`)
    await shot(ap, '37-alerts')
    // And the audit log names Alertmanager and the token.
    const audit = await rest('GET', `/api/v1/audit?project=${PROJECT}&action=flag.toggle&limit=1`)
    assert(audit.items[0].actor === 'alertmanager:flagpole-shop via token:alertmanager', `audit actor ${audit.items[0].actor}`)

    await row.getByRole('button', { name: 'Delete' }).click()
    await ap.getByRole('dialog').getByRole('button', { name: 'Delete', exact: true }).click()
    await ap.getByText('No alert mappings yet.').waitFor()
    await alertsContext.close()
  }

  log('scheduled changes: an edit scheduled from the flag page, a conflict rebased and a change cancelled')
  {
    // Another zone than the server's UTC: the time is picked and shown in it, stored in UTC.
    const schedContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'Asia/Tokyo' })
    const sp = await schedContext.newPage()
    sp.on('requestfailed', (r) => {
      if (!r.url().endsWith('/events')) failedRequests.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`)
    })
    sp.on('pageerror', (e) => failedRequests.push(`page error: ${e.message}`))
    await signIn(sp, { email: EMAIL, password: NEW_PASSWORD })
    await sp.getByLabel('Project', { exact: true }).selectOption(PROJECT)
    await sp.getByRole('link', { name: 'Checkout v2' }).click()
    await sp.getByRole('tab', { name: /staging/i }).click()
    await sp.getByRole('tab', { name: /staging/i, selected: true }).waitFor()
    const flagBefore = await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}`)
    const serving = flagBefore.environments.staging.default_serve.variant === 'on' ? 'off' : 'on'
    await sp.getByLabel('Default serves', { exact: true }).selectOption(serving)
    await sp.getByRole('button', { name: 'Schedule…' }).click()
    // Ten minutes ahead in the page's zone (Tokyo), as the datetime-local input wants it.
    const local = await sp.evaluate(() => {
      const t = new Date(Date.now() + 10 * 60_000)
      const p = (n) => String(n).padStart(2, '0')
      return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}T${p(t.getHours())}:${p(t.getMinutes())}`
    })
    await sp.getByLabel('Apply at').fill(local)
    await sp.getByRole('button', { name: 'Schedule change' }).click()
    await sp.getByText(/^Scheduled for /).waitFor()
    const mine = (await rest('GET', `/api/v1/projects/${PROJECT}/flags/${FLAG}/scheduled-changes?state=scheduled`))[0]
    assert(mine && mine.environment === 'staging', `scheduled from the page: ${JSON.stringify(mine)}`)
    assert(mine.change.config.default_serve.variant === serving, 'the edit is what was scheduled')
    // Stored in UTC: the Tokyo wall-clock time the person typed, 9 hours ahead of UTC.
    const [d, t] = local.split('T')
    assert(Date.parse(mine.at) === Date.parse(`${d}T${t}:00+09:00`), `stored ${mine.at} for Tokyo ${local}`)
    await sp.getByTestId(`scheduled-${mine.id}`).getByText('scheduled', { exact: true }).waitFor()
    await shot(sp, '40-flag-scheduled')

    // A change the flag moves past before it is due: a conflict, rebased from the list.
    const other = await rest('POST', `/api/v1/projects/${PROJECT}/flags/${FLAG}/environments/staging/scheduled-changes`, {
      at: new Date(Date.now() + 1500).toISOString(),
      enabled: !flagBefore.environments.staging.enabled,
      comment: 'e2e: soon',
    })
    const moved = await rest('POST', `/api/v1/projects/${PROJECT}/flags/${FLAG}/environments/development/toggle`, {
      enabled: !flagBefore.environments.development.enabled,
      comment: 'e2e: someone else',
    })
    assert(moved.version > flagBefore.version, 'the flag moved on')
    await sp.getByRole('link', { name: 'All scheduled changes in this project' }).click()
    await sp.getByRole('heading', { name: 'Scheduled changes' }).waitFor()
    const otherRow = sp.getByTestId(`scheduled-${other.id}`)
    await otherRow.getByText('conflict', { exact: true }).waitFor({ timeout: 15_000 })
    await shot(sp, '41-scheduled-conflict')
    await otherRow.getByRole('button', { name: 'Rebase' }).click()
    await otherRow.getByText('applied', { exact: true }).waitFor({ timeout: 15_000 })
    // The change scheduled from the flag page is now based on an old version: cancel it.
    const mineRow = sp.getByTestId(`scheduled-${mine.id}`)
    await mineRow.getByRole('button', { name: 'Cancel' }).click()
    await mineRow.getByText('cancelled', { exact: true }).waitFor()
    const audit = await rest('GET', `/api/v1/audit?project=${PROJECT}&action=scheduled_change&limit=20`)
    const actions = audit.items.map((e) => `${e.action} by ${e.actor}`)
    assert(actions.some((a) => a === 'scheduled_change.apply by system:scheduler'), `audit: ${actions}`)
    assert(actions.some((a) => a.startsWith('scheduled_change.create by user:')), `audit: ${actions}`)
    await schedContext.close()
  }

  assert(failedRequests.length === 0, `failed requests or page errors: ${failedRequests.join('; ')}`)
  console.log(`e2e: passed; screenshots:\n${shots.map((s) => '  ' + s).join('\n')}`)
} catch (err) {
  exitCode = 1
  console.error(`e2e: FAILED at step "${step}": ${err?.stack ?? err}`)
  try {
    const pages = browser.contexts().flatMap((c) => c.pages())
    for (const [i, p] of pages.entries()) await p.screenshot({ path: join(SHOTS, `failure-${i}.png`), fullPage: true })
    console.error(`e2e: failure screenshots in ${SHOTS}`)
  } catch {}
} finally {
  await browser.close()
}
process.exit(exitCode)
