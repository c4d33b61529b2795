package auditpg

import "database/sql/driver"

// For the external tests (package auditpg_test), which may import packages
// that import auditpg: the wrapper over any connector, and the fake driver
// that answers at once, to measure what instrumentation alone costs.

func WrapConnectorForTest(inner driver.Connector, opts ...Option) (*Connector, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	return wrapConnector(inner, cfg), nil
}

type FakeConnector = fakeConnector
