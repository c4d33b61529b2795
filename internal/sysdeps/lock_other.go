//go:build !unix

package sysdeps

import "context"

// lockFile does nothing where there is no flock: there is no apt-get
// either, so Ensure never installs there.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
