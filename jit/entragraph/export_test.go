package entragraph

// MaxBodyBytes is the largest Graph page the resolver reads.
const MaxBodyBytes = maxBodyBytes
