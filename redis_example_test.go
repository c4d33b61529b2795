package auditpg_test

import (
	"log"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/redis/go-redis/v9"
)

// The shared Redis tier from a URL: the processes of one application warm
// each other's result cache. The prefix keeps this application's keys
// apart (and lets a Redis ACL confine it to them).
func ExampleWithRedis() {
	db, err := auditpg.Open("postgres://app@localhost:5432/audit",
		auditpg.WithCacheMode(auditpg.CacheAll),
		auditpg.WithRedis("rediss://billing:secret@redis.internal:6380/0"),
		auditpg.WithRedisPrefix("billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}

// The application's own client, here a Redis Cluster's. Its calls get the
// tier's budget as a context deadline: ContextTimeoutEnabled makes go-redis
// honour it, and no retries keep a failing Redis from costing more.
func ExampleWithRedisClient() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"},
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	defer client.Close()
	db, err := auditpg.Open("postgres://app@localhost:5432/audit",
		auditpg.WithCacheMode(auditpg.CacheAll),
		auditpg.WithRedisClient(client),
		auditpg.WithRedisTimeout(10*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}
