package jit

// connHealth is what a connection has seen of its sign-ins.
type connHealth struct{}
