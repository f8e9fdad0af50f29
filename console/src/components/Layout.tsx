import { NavLink, Outlet, useNavigate } from "react-router";
import type { Role } from "../api/types";
import { useSession } from "../session";

// [path, label, the least role offered the link]
const LINKS: readonly (readonly [string, string, Role])[] = [
  ["/", "Dashboard", "viewer"],
  ["/campaigns", "Campaigns", "viewer"],
  ["/contacts", "Contacts", "viewer"],
  ["/lists", "Lists", "viewer"],
  ["/templates", "Templates", "viewer"],
  ["/statistics", "Statistics", "viewer"],
  ["/hooks", "Hooks", "manager"],
  ["/settings", "Settings", "viewer"],
];

export default function Layout() {
  const { me, signOut, can } = useSession();
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
            {LINKS.filter(([, , role]) => can(role)).map(([to, label]) => (
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
