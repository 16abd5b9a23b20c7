package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

// The baseline is the least a webhook endpoint can do: Echo, parse the form and the
// afterCall JSON, one Redis GET (the agent's mapping), answer JSON. calltrack's serve
// does more by design (auth, dedupe, Kafka ack, traces); the ratio to this says what
// that costs. It runs as its own process so its RSS and CPU are its own.
func baselineCmd(args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "redis-server address")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("baseline: redis %s: %w", *redisAddr, err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// The parent reads the address from the first line.
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: baselineHandler(rdb), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func baselineHandler(rdb *redis.Client) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/webhooks/myoperator/:tenant/aftercall", func(c echo.Context) error {
		var payload map[string]any // the whole payload, as a handler that reads it would
		if json.Unmarshal([]byte(c.FormValue("myoperator")), &payload) != nil {
			return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "malformed_payload"}})
		}
		agent := firstAgent(payload)
		owner, err := rdb.Get(c.Request().Context(), "baseline:map:"+c.Param("tenant")+":"+agent).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return c.JSON(http.StatusServiceUnavailable, map[string]any{"error": map[string]string{"code": "unavailable"}})
		}
		return c.JSON(http.StatusOK, map[string]any{"status": "accepted", "tenant": c.Param("tenant"), "owner": owner})
	})
	return e
}

// firstAgent is _ld[0]._rr[0]._id of an afterCall, or "".
func firstAgent(p map[string]any) string {
	legs, _ := p["_ld"].([]any)
	if len(legs) == 0 {
		return ""
	}
	leg, _ := legs[0].(map[string]any)
	agents, _ := leg["_rr"].([]any)
	if len(agents) == 0 {
		return ""
	}
	a, _ := agents[0].(map[string]any)
	id, _ := a["_id"].(string)
	return id
}
