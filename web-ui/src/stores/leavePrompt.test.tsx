import { describe, expect, it } from 'vitest'
import { internalTarget } from './leavePrompt'

function click(html: string, init: MouseEventInit = {}): MouseEvent {
  document.body.innerHTML = html
  const target = document.querySelector('[data-click]')!
  const event = new MouseEvent('click', { bubbles: true, cancelable: true, button: 0, ...init })
  Object.defineProperty(event, 'target', { value: target })
  return event
}

describe('which clicks leave the page', () => {
  const origin = 'http://localhost:3000'
  it('catches a plain click on an in-app link, also on an element inside it', () => {
    expect(internalTarget(click('<a href="/p/x/flags" data-click>Flags</a>'), origin)).toBe('/p/x/flags')
    expect(internalTarget(click('<a href="/p/x/audit?env=prod"><span data-click>Audit</span></a>'), origin)).toBe(
      '/p/x/audit?env=prod',
    )
  })
  it('lets through new tabs, other sites, downloads and non-links', () => {
    expect(internalTarget(click('<a href="/p" data-click>x</a>', { ctrlKey: true }), origin)).toBeNull()
    expect(internalTarget(click('<a href="/p" target="_blank" data-click>x</a>'), origin)).toBeNull()
    expect(internalTarget(click('<a href="https://example.org/" data-click>x</a>'), origin)).toBeNull()
    expect(internalTarget(click('<a href="/f.json" download data-click>x</a>'), origin)).toBeNull()
    expect(internalTarget(click('<button data-click>x</button>'), origin)).toBeNull()
  })
})
