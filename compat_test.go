package auditpg

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/jmoiron/sqlx"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func TestSqlx(t *testing.T) {
	ctx := context.Background()
	sqlx.BindDriver(DriverName, sqlx.DOLLAR) // as the README documents
	db, err := sqlx.Open(DriverName, testDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.MustExecContext(ctx, `CREATE TABLE IF NOT EXISTS sqlx_event (id serial PRIMARY KEY, org text NOT NULL, action text NOT NULL, at timestamptz NOT NULL)`)
	db.MustExecContext(ctx, `TRUNCATE sqlx_event`)

	type event struct {
		ID     int       `db:"id"`
		Org    string    `db:"org"`
		Action string    `db:"action"`
		At     time.Time `db:"at"`
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := db.NamedExecContext(ctx, `INSERT INTO sqlx_event (org, action, at) VALUES (:org, :action, :at)`,
		[]event{{Org: "a", Action: "login", At: at}, {Org: "b", Action: "logout", At: at}}); err != nil {
		t.Fatal(err)
	}
	// Rebind turns ? into $n for auditpg only if BindDriver registered it.
	var got []event
	if err := db.SelectContext(ctx, &got, db.Rebind(`SELECT * FROM sqlx_event WHERE org IN (?, ?) ORDER BY org`), "a", "b"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Action != "login" || !got[1].At.Equal(at) {
		t.Errorf("sqlx Select = %+v", got)
	}
	var one event
	if err := db.GetContext(ctx, &one, `SELECT * FROM sqlx_event WHERE org = $1`, "b"); err != nil || one.Action != "logout" {
		t.Errorf("sqlx Get = %+v, %v", one, err)
	}
	q, args, err := sqlx.In(`SELECT count(*) FROM sqlx_event WHERE org IN (?)`, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.GetContext(ctx, &n, db.Rebind(q), args...); err != nil || n != 2 {
		t.Errorf("sqlx.In count = %d, %v; want 2", n, err)
	}
	if st, err := Stats(db.DB); err != nil || st.Totals.Queries == 0 {
		t.Errorf("Stats through sqlx's *sql.DB: %+v, %v", st.Totals, err)
	}
}

type gormPreset struct {
	ID        uint   `gorm:"primaryKey"`
	Name      string `gorm:"not null;uniqueIndex:gorm_preset_name_org"`
	OrgID     string `gorm:"not null;uniqueIndex:gorm_preset_name_org"`
	Action    string `gorm:"not null"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

func TestGorm(t *testing.T) {
	gdb, err := gorm.Open(postgres.New(postgres.Config{DriverName: DriverName, DSN: testDSN}),
		&gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := gdb.DB()
	defer sqlDB.Close()
	if err := gdb.Migrator().DropTable(&gormPreset{}); err != nil {
		t.Fatal(err)
	}
	if err := gdb.AutoMigrate(&gormPreset{}); err != nil {
		t.Fatal(err)
	}

	p := gormPreset{Name: "login", OrgID: "org-1", Action: "auth.login"}
	if err := gdb.Create(&p).Error; err != nil || p.ID == 0 {
		t.Fatalf("create: id %d, %v", p.ID, err)
	}
	var got gormPreset
	if err := gdb.Where("name = ? AND org_id = ?", "login", "org-1").First(&got).Error; err != nil || got.Action != "auth.login" {
		t.Fatalf("query: %+v, %v", got, err)
	}
	if err := gdb.Model(&got).Update("action", "auth.sso_login").Error; err != nil {
		t.Fatal(err)
	}
	gdb.First(&got, p.ID)
	if got.Action != "auth.sso_login" {
		t.Errorf("after update action = %q", got.Action)
	}

	errBoom := errors.New("boom")
	err = gdb.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gormPreset{Name: "rolled", OrgID: "org-1", Action: "x"}).Error; err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("transaction error = %v", err)
	}
	if err := gdb.Transaction(func(tx *gorm.DB) error {
		return tx.Create(&gormPreset{Name: "kept", OrgID: "org-2", Action: "y"}).Error
	}); err != nil {
		t.Fatal(err)
	}
	var count int64
	gdb.Model(&gormPreset{}).Count(&count)
	if count != 2 {
		t.Errorf("%d presets after one rolled-back and one committed transaction, want 2", count)
	}
	if err := gdb.Delete(&gormPreset{}, p.ID).Error; err != nil {
		t.Fatal(err)
	}
	gdb.Model(&gormPreset{}).Count(&count)
	if count != 1 {
		t.Errorf("%d presets after delete, want 1", count)
	}
	// A duplicate surfaces pgx's error, SQLSTATE and all, through the wrapper.
	err = gdb.Create(&gormPreset{Name: "kept", OrgID: "org-2", Action: "dup"}).Error
	if pgerr.SQLState(err) != "23505" {
		t.Errorf("duplicate create: %v, want SQLSTATE 23505", err)
	}
	st, err := Stats(sqlDB)
	if err != nil || st.Totals.Commits < 1 || st.Totals.Rollbacks < 1 {
		t.Errorf("Stats through GORM's *sql.DB: %+v, %v", st.Totals, err)
	}
}
