package sandbox

// PhoneBridgeUser is a user of the org's PhoneBridge (GET /phonebridge/v3/users):
// its id is what callnotify's zohouser names — not the CRM user id.
type PhoneBridgeUser struct {
	ZohoUser string `json:"zohouser"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}
