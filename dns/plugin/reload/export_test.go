package reload

import "time"

// SetMinimums lowers the smallest interval and jitter for tests.
func SetMinimums(interval, jitter time.Duration) { minInterval, minJitter = interval, jitter }
