import { NavLink, Outlet, useNavigate } from "react-router";
import { useSession } from "../session";

const LINKS = [
  ["/", "Dashboard"],
  ["/campaigns", "Campaigns"],
  ["/contacts", "Contacts"],
  ["/lists", "Lists"],
  ["/templates", "Templates"],
  ["/statistics", "Statistics"],
  ["/settings", "Settings"],
] as const;

export default function Layout() {
  const { me, signOut } = useSession();
  const navigate = useNavigate();
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Clarion</span>
        <nav aria-label="Main">
          <ul>
            {LINKS.map(([to, label]) => (
              <li key={to}>
                <NavLink to={to} end={to === "/"}>
                  {label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span>
            {me?.user?.email ?? me?.key?.name} · <span className="role">{me?.role}</span>
          </span>
          <a
            href="/sign-in"
            onClick={(event) => {
              event.preventDefault();
              void signOut().then(() => navigate("/sign-in"));
            }}
          >
            Sign out
          </a>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
