package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

type tenantRun struct {
	id, token, owner string
	crm              string // kylas | zoho
	faultStatus      int
	uids             []string
}

// resilienceCmd is issue 5's check against a running `calltrack dev`: it maps an agent
// on each dev tenant, injects faults into the sandbox CRMs, posts calls concurrently
// across the tenants, then waits until every call is in its CRM and reports what a user
// would check — each call exactly once, the owner, the webhook latency, the CRM request
// rate and Zoho's batching.
func resilienceCmd(args []string) error {
	fs := flag.NewFlagSet("resilience", flag.ExitOnError)
	base := fs.String("base", "http://127.0.0.1:8080", "calltrack dev's address")
	calls := fs.Int("calls", 300, "calls to post, spread over the tenants")
	rate := fs.Float64("error-rate", 0.3, "share of CRM requests the sandboxes fail (429 on Kylas, 503 on Zoho)")
	latency := fs.Int("latency-ms", 100, "latency the sandboxes add to every CRM request")
	conc := fs.Int("concurrency", 8, "webhooks in flight")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up waiting for the CRMs after this")
	_ = fs.Parse(args)
	return runResilience(*base, *calls, *rate, *latency, *conc, *timeout)
}

func runResilience(base string, calls int, rate float64, latency, conc int, timeout time.Duration) error {
	tenants := []*tenantRun{
		{id: "demo", token: "demo-token", owner: "1001", crm: "kylas", faultStatus: 429},
		{id: "demo-zoho", token: "demo-zoho-token", owner: "5725767000000411001", crm: "zoho", faultStatus: 503},
	}
	const agent = "5cd40f6556f2f124"
	for _, t := range tenants {
		if err := send(http.MethodPut, base+"/admin/v1/tenants/"+t.id+"/mappings/"+agent, "demo-admin",
			map[string]any{"crm_user_id": t.owner, "email": "sumit.arya@example.com"}, nil); err != nil {
			return fmt.Errorf("map agent on %s: %w", t.id, err)
		}
		if err := send(http.MethodPut, base+"/sandbox/"+t.crm+"/faults", "",
			map[string]any{"error_rate": rate, "status": t.faultStatus, "latency_ms": latency}, nil); err != nil {
			return fmt.Errorf("faults on %s: %w", t.crm, err)
		}
	}
	defer func() {
		for _, t := range tenants {
			_ = send(http.MethodPut, base+"/sandbox/"+t.crm+"/faults", "", map[string]any{}, nil)
		}
	}()

	sample, err := get(base+"/sandbox/myoperator/samples/aftercall.json", nil)
	if err != nil {
		return err
	}
	stamp := time.Now().UnixNano()
	type job struct {
		t   *tenantRun
		uid string
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var took []time.Duration
	var failed []string
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				payload := strings.Replace(string(sample), "n2.1596270949.2175190", j.uid, 1)
				payload = strings.Replace(payload, `"_ai":"5f114f490dbe2437"`, fmt.Sprintf(`"_ai":"%s"`, j.uid), 1)
				start := time.Now()
				res, err := http.PostForm(base+"/webhooks/myoperator/"+j.t.id+"/aftercall?token="+j.t.token, url.Values{"myoperator": {payload}})
				d := time.Since(start)
				mu.Lock()
				if err != nil || res.StatusCode != http.StatusOK {
					failed = append(failed, j.uid)
				} else {
					took = append(took, d)
				}
				mu.Unlock()
				if res != nil {
					res.Body.Close()
				}
			}
		}()
	}
	for i := range calls {
		t := tenants[i%len(tenants)]
		uid := fmt.Sprintf("load.%d.%d", stamp, i)
		t.uids = append(t.uids, uid)
		jobs <- job{t, uid}
	}
	close(jobs)
	wg.Wait()
	posted := time.Now()
	if len(failed) > 0 {
		return fmt.Errorf("%d webhooks not accepted, e.g. %s", len(failed), failed[0])
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	fmt.Printf("posted %d calls: webhook p50 %s, p99 %s, max %s\n", calls,
		took[len(took)/2].Round(time.Microsecond), took[len(took)*99/100].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))

	deadline := time.Now().Add(timeout)
	ok := true
	for _, t := range tenants {
		var counts map[string]int
		var owners map[string]string
		for {
			counts, owners, err = records(base, t.crm)
			if err != nil {
				return err
			}
			done := 0
			for _, uid := range t.uids {
				if counts[uid] > 0 {
					done++
				}
			}
			if done == len(t.uids) || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		missing, dup, wrong := 0, 0, 0
		for _, uid := range t.uids {
			switch n := counts[uid]; {
			case n == 0:
				missing++
			case n > 1:
				dup++
			}
			if counts[uid] > 0 && owners[uid] != t.owner {
				wrong++
			}
		}
		var stats map[string]any
		_ = send(http.MethodGet, base+"/sandbox/"+t.crm+"/stats", "", nil, &stats)
		fmt.Printf("%s (%s): %d calls, %d written once, %d missing, %d duplicated, %d wrong owner; all in %s; sandbox %v\n",
			t.id, t.crm, len(t.uids), len(t.uids)-missing-dup, missing, dup, wrong, time.Since(posted).Round(time.Second), stats)
		if missing+dup+wrong > 0 {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("not every call was written exactly once with its owner")
	}
	return nil
}

var zohoCallID = regexp.MustCompile(`(?m)^Call ID: (\S+)$`)

// records counts the CRM records per call id and notes each call's owner.
func records(base, crm string) (map[string]int, map[string]string, error) {
	counts, owners := map[string]int{}, map[string]string{}
	switch crm {
	case "kylas":
		for page := 1; ; page++ {
			var list struct {
				Content []struct {
					RemoteID string `json:"remoteId"`
					Owner    struct {
						ID json.Number `json:"id"`
					} `json:"owner"`
				} `json:"content"`
				TotalPages int `json:"totalPages"`
			}
			if err := send(http.MethodGet, fmt.Sprintf("%s/sandbox/kylas/v1/call-logs?page=%d&size=1000", base, page), "", nil, &list, "api-key", "demo-crm-key"); err != nil {
				return nil, nil, err
			}
			for _, r := range list.Content {
				counts[r.RemoteID]++
				owners[r.RemoteID] = r.Owner.ID.String()
			}
			if page >= list.TotalPages {
				break
			}
		}
	case "zoho":
		var list struct {
			Data []struct {
				Description string `json:"Description"`
				Owner       struct {
					ID string `json:"id"`
				} `json:"Owner"`
			} `json:"data"`
		}
		if err := send(http.MethodGet, base+"/sandbox/zoho/crm/v8/Calls?per_page=10000", "", nil, &list, "Authorization", "Zoho-oauthtoken demo-zoho-access"); err != nil {
			return nil, nil, err
		}
		for _, r := range list.Data {
			if m := zohoCallID.FindStringSubmatch(r.Description); m != nil {
				counts[m[1]]++
				owners[m[1]] = r.Owner.ID
			}
		}
	}
	return counts, owners, nil
}

func get(u string, hdr []string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", u, res.StatusCode, b)
	}
	return b, nil
}

func send(method, u, bearer string, body, out any, hdr ...string) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, u, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
