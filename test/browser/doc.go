// Package browser holds the real-browser end-to-end tests of sioproxy: Chromium, driven by
// playwright-core (test/node), runs the Socket.IO 4 and 2 browser clients through the proxy in every
// transport mode, uses the page of `sioproxy demo` in several tabs, and the admin listener's
// dashboard against real sessions (rows agreeing with /backends, drains clicked on the page, the
// token prompt, the mirror panel, the phone layout, a proxy that stops answering), and checks that
// a page of another origin cannot drive the loopback admin API. Screenshots are kept under
// tmp/e2e-logs/browser/<test>/.
//
// Setup: Debian's chromium at /usr/bin/chromium (SIOPROXY_CHROMIUM overrides the path) and
// `cd test/node && npm ci`. The tests fail, never skip, when either is missing.
package browser
