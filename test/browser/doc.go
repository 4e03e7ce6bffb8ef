// Package browser holds the real-browser end-to-end tests of sioproxy: Chromium, driven by
// playwright-core (test/node), runs the Socket.IO 4 and 2 browser clients through the proxy in every
// transport mode, and uses the page of `sioproxy demo` in several tabs.
//
// Setup: Debian's chromium at /usr/bin/chromium (SIOPROXY_CHROMIUM overrides the path) and
// `cd test/node && npm ci`. The tests fail, never skip, when either is missing.
package browser
