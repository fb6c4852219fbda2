package jit

// CheckMetadataURL is checkMetadataURL, for the external tests.
var CheckMetadataURL = checkMetadataURL
